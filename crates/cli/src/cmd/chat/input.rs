//! Reading what the user types in `kaiyuan chat`: one message per line, a line ending in `\`
//! continued on the next, a block between two `"""` lines kept as typed, and the `/` commands.
//! Works the same on a terminal and on a pipe; invalid UTF-8 is replaced, never an error.

use std::io::{self, BufRead};

/// The help text of `/help` (also printed, shortened, at start).
pub const HELP: &str = "\
Type a message and press Enter. For several lines, end a line with \\ to continue it, or put
the text between two lines that hold only \"\"\" (a block ends at the second \"\"\").
Commands:
  /reset   forget the conversation (the system prompt stays)
  /help    this text
  /exit    quit (also /quit, or end of input: Ctrl-D)";

/// One thing the user entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Message(String),
    Reset,
    Help,
    Exit,
    /// A line starting with `/` that is not a command (not sent to the model).
    UnknownCommand(String),
}

/// Where the reader is, so a terminal can show the right prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// Waiting for a new message.
    First,
    /// Inside a `\` continuation or a `"""` block.
    Continuation,
}

const BLOCK_FENCE: &str = "\"\"\"";

/// Reads the next input; `None` at end of input. `prompt` is called before each line is read.
pub fn read_input(
    reader: &mut dyn BufRead,
    prompt: &mut dyn FnMut(PromptKind),
) -> io::Result<Option<Input>> {
    loop {
        prompt(PromptKind::First);
        let Some(line) = read_line(reader)? else {
            return Ok(None);
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed == BLOCK_FENCE {
            let mut lines = Vec::new();
            loop {
                prompt(PromptKind::Continuation);
                match read_line(reader)? {
                    Some(l) if l.trim() == BLOCK_FENCE => break,
                    Some(l) => lines.push(l),
                    None => break, // end of input closes the block
                }
            }
            let text = lines.join("\n");
            if text.trim().is_empty() {
                continue;
            }
            return Ok(Some(Input::Message(text)));
        }
        if !line.ends_with('\\') && trimmed.starts_with('/') {
            return Ok(Some(command(trimmed)));
        }
        let mut parts = Vec::new();
        let mut current = line;
        while let Some(stripped) = current.strip_suffix('\\') {
            parts.push(stripped.to_string());
            prompt(PromptKind::Continuation);
            match read_line(reader)? {
                Some(next) => current = next,
                None => {
                    current = String::new();
                    break;
                }
            }
        }
        parts.push(current);
        let text = parts.join("\n");
        if text.trim().is_empty() {
            continue;
        }
        return Ok(Some(Input::Message(text)));
    }
}

fn command(text: &str) -> Input {
    match text {
        "/reset" | "/clear" => Input::Reset,
        "/help" | "/?" => Input::Help,
        "/exit" | "/quit" | "/bye" => Input::Exit,
        other => Input::UnknownCommand(other.to_string()),
    }
}

/// One line without its line ending; `None` at end of input.
fn read_line(reader: &mut dyn BufRead) -> io::Result<Option<String>> {
    let mut bytes = Vec::new();
    if reader.read_until(b'\n', &mut bytes)? == 0 {
        return Ok(None);
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> Vec<Input> {
        let mut reader = io::Cursor::new(text.to_vec());
        let mut out = Vec::new();
        while let Some(input) = read_input(&mut reader, &mut |_| {}).expect("in memory") {
            out.push(input);
        }
        out
    }

    fn msg(s: &str) -> Input {
        Input::Message(s.to_string())
    }

    #[test]
    fn one_message_per_line_and_commands() {
        assert_eq!(
            all(b"hello\n\n  \n/reset\nbye\r\n/exit\n/nope\n/help"),
            vec![
                msg("hello"),
                Input::Reset,
                msg("bye"),
                Input::Exit,
                Input::UnknownCommand("/nope".into()),
                Input::Help
            ]
        );
    }

    #[test]
    fn backslash_continues_the_line() {
        assert_eq!(
            all(b"first \\\nsecond\\\nthird\nnext\n"),
            vec![msg("first \nsecond\nthird"), msg("next")]
        );
        // A continued line that starts with / is text, and end of input ends the message.
        assert_eq!(all(b"/path\\\nx\\"), vec![msg("/path\nx\n")]);
    }

    #[test]
    fn triple_quote_blocks_keep_lines_and_slashes() {
        assert_eq!(
            all(b"\"\"\"\n  indented\n/reset\nends with \\\n\n\"\"\"\nafter\n"),
            vec![msg("  indented\n/reset\nends with \\\n"), msg("after")]
        );
        assert_eq!(
            all(b"\"\"\"\nunclosed\nblock"),
            vec![msg("unclosed\nblock")]
        );
        assert_eq!(all(b"\"\"\"\n\n\"\"\"\n"), vec![]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(all(b"caf\xff\n"), vec![msg("caf\u{FFFD}")]);
    }

    #[test]
    fn prompts_follow_the_reader() {
        let mut reader = io::Cursor::new(b"a\\\nb\n".to_vec());
        let mut kinds = Vec::new();
        let got = read_input(&mut reader, &mut |k| kinds.push(k)).expect("in memory");
        assert_eq!(got, Some(msg("a\nb")));
        assert_eq!(kinds, vec![PromptKind::First, PromptKind::Continuation]);
    }
}
