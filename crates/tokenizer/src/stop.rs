//! Stop strings over streamed text: [`StopFilter`] passes text chunks through (for example the
//! output of a [`crate::StreamDecoder`]) until one of its stop strings appears, even when the
//! stop string is split across chunks. Text that could still turn out to be the start of a stop
//! string is held back until the next chunk decides it.

/// What [`StopFilter::push`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopEvent {
    /// Text that can be shown (possibly empty); no stop string yet.
    Text(String),
    /// A stop string (index `stop` in the list) was found: `text` is what preceded it, the
    /// last text of the stream. Further pushes return empty text.
    Stopped { text: String, stop: usize },
}

pub struct StopFilter {
    stops: Vec<String>,
    pending: String,
    stopped: bool,
}

impl StopFilter {
    /// A filter for these stop strings (empty ones are ignored).
    pub fn new<S: AsRef<str>>(stops: &[S]) -> Self {
        let stops = stops
            .iter()
            .map(|s| s.as_ref().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        StopFilter {
            stops,
            pending: String::new(),
            stopped: false,
        }
    }

    pub fn push(&mut self, chunk: &str) -> StopEvent {
        if self.stopped {
            return StopEvent::Text(String::new());
        }
        self.pending.push_str(chunk);
        // The earliest occurrence wins; at equal positions, the first listed.
        let mut found: Option<(usize, usize)> = None;
        for (k, s) in self.stops.iter().enumerate() {
            if let Some(p) = self.pending.find(s.as_str()) {
                if found.is_none_or(|(q, _)| p < q) {
                    found = Some((p, k));
                }
            }
        }
        if let Some((p, stop)) = found {
            self.stopped = true;
            let text = self.pending[..p].to_string();
            self.pending.clear();
            return StopEvent::Stopped { text, stop };
        }
        let hold = self.held_suffix_len();
        let emit = self.pending.len() - hold;
        let text = self.pending[..emit].to_string();
        self.pending.drain(..emit);
        StopEvent::Text(text)
    }

    /// Ends the stream: releases held-back text (it did not become a stop string).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Length of the longest suffix of the pending text that is a proper prefix of a stop string.
    fn held_suffix_len(&self) -> usize {
        let p = &self.pending;
        let mut hold = 0;
        for s in &self.stops {
            let max = (s.len() - 1).min(p.len());
            for l in (hold + 1..=max).rev() {
                if p.is_char_boundary(p.len() - l) && s.is_char_boundary(l) && p.ends_with(&s[..l])
                {
                    hold = l;
                    break;
                }
            }
        }
        hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], chunks: &[&str]) -> (Vec<StopEvent>, String) {
        let mut f = StopFilter::new(stops);
        let events = chunks.iter().map(|c| f.push(c)).collect();
        (events, f.finish())
    }

    #[test]
    fn stop_split_across_chunks() {
        use StopEvent::*;
        let (ev, rest) = run(&["<|im_end|>"], &["Hello <|im", "_en", "d|> more"]);
        assert_eq!(
            ev,
            [
                Text("Hello ".into()),
                Text("".into()),
                Stopped {
                    text: "".into(),
                    stop: 0
                }
            ]
        );
        assert_eq!(rest, "");
        let (ev, rest) = run(&["\n\nUser:"], &["a\n", "\nb", "\n\nUs", "er: x"]);
        assert_eq!(
            ev,
            [
                Text("a".into()),
                Text("\n\nb".into()),
                Text("".into()),
                Stopped {
                    text: "".into(),
                    stop: 0
                }
            ]
        );
        assert_eq!(rest, "");
    }

    #[test]
    fn false_starts_are_released() {
        use StopEvent::*;
        let (ev, rest) = run(&["STOP", "ab"], &["xS", "TOx", "a"]);
        assert_eq!(ev, [Text("x".into()), Text("STOx".into()), Text("".into())]);
        assert_eq!(rest, "a");
        // Earliest occurrence wins, whichever stop string it is.
        let (ev, _) = run(&["STOP", "ab"], &["zabSTOP"]);
        assert_eq!(
            ev,
            [Stopped {
                text: "z".into(),
                stop: 1
            }]
        );
        // Multi-byte characters are held whole.
        let (ev, rest) = run(&["é!"], &["caf\u{e9}"]);
        assert_eq!(ev, [Text("caf".into())]);
        assert_eq!(rest, "\u{e9}");
    }
}
