//! Writing a streamed reply: reasoning apart from the answer. On a terminal the reasoning is
//! dimmed after a `thinking:` label; elsewhere (a pipe, a file) the two are plain labelled
//! sections, `[thinking]` and `[answer]`. A reply without reasoning is written as is.

use std::io::{self, Write};

use kaiyuan_chat::SplitDelta;

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

pub struct ReplyWriter<W: Write> {
    out: W,
    terminal: bool,
    /// The reasoning section is open (its label was written, the answer has not begun).
    in_reasoning: bool,
}

impl<W: Write> ReplyWriter<W> {
    pub fn new(out: W, terminal: bool) -> ReplyWriter<W> {
        ReplyWriter {
            out,
            terminal,
            in_reasoning: false,
        }
    }

    /// Writes one delta of the current reply.
    pub fn write(&mut self, delta: &SplitDelta) -> io::Result<()> {
        if !delta.reasoning.is_empty() {
            if !self.in_reasoning {
                self.in_reasoning = true;
                let label = if self.terminal {
                    format!("{DIM}thinking: ")
                } else {
                    "[thinking]\n".to_string()
                };
                self.out.write_all(label.as_bytes())?;
            }
            self.out.write_all(delta.reasoning.as_bytes())?;
        }
        if !delta.content.is_empty() {
            self.close_reasoning()?;
            self.out.write_all(delta.content.as_bytes())?;
        }
        self.out.flush()
    }

    /// Ends the current reply (a newline after it) and gets ready for the next.
    pub fn end_reply(&mut self) -> io::Result<()> {
        self.close_reasoning()?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    fn close_reasoning(&mut self) -> io::Result<()> {
        if self.in_reasoning {
            self.in_reasoning = false;
            let sep = if self.terminal {
                format!("{RESET}\n\n")
            } else {
                "\n[answer]\n".to_string()
            };
            self.out.write_all(sep.as_bytes())?;
        }
        Ok(())
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(r: &str, c: &str) -> SplitDelta {
        SplitDelta {
            reasoning: r.into(),
            content: c.into(),
        }
    }

    fn written(terminal: bool, deltas: &[SplitDelta]) -> String {
        let mut w = ReplyWriter::new(Vec::new(), terminal);
        for d in deltas {
            w.write(d).expect("in memory");
        }
        w.end_reply().expect("in memory");
        String::from_utf8(w.into_inner()).expect("UTF-8")
    }

    #[test]
    fn plain_answers_are_written_as_is() {
        assert_eq!(
            written(false, &[delta("", "Hi"), delta("", " there")]),
            "Hi there\n"
        );
        assert_eq!(written(true, &[delta("", "Hi")]), "Hi\n");
    }

    #[test]
    fn reasoning_is_a_labelled_section_on_a_pipe() {
        assert_eq!(
            written(false, &[delta("hm", ""), delta(" ok", "4"), delta("", ".")]),
            "[thinking]\nhm ok\n[answer]\n4.\n"
        );
        // Reasoning that never reached an answer still ends its section.
        assert_eq!(
            written(false, &[delta("hm", "")]),
            "[thinking]\nhm\n[answer]\n\n"
        );
    }

    #[test]
    fn reasoning_is_dimmed_on_a_terminal() {
        assert_eq!(
            written(true, &[delta("hm", ""), delta("", "4")]),
            "\x1b[2mthinking: hm\x1b[0m\n\n4\n"
        );
    }
}
