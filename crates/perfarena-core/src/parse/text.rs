//! Line-level helpers shared by the text parsers: cheap line walking, `\r`/ANSI clean-up,
//! numbers and Python tracebacks.
//!
//! Parsers never copy the whole log: they find anchors (see `anchors.rs`) and look only at
//! the lines around them. A line is cleaned (ANSI escapes removed) only when it is looked at,
//! and copied only when it actually contains an escape.

use std::borrow::Cow;

/// A byte range of the log: `start` is a line start, `end` a line end (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

/// Start and end (exclusive, before the `\n`) of the line that holds byte `pos`.
pub(crate) fn line_bounds(src: &str, pos: usize) -> (usize, usize) {
    let bytes = src.as_bytes();
    let pos = pos.min(bytes.len());
    let start = memchr::memrchr(b'\n', &bytes[..pos]).map_or(0, |i| i + 1);
    let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
    (start, end)
}

/// The line before the one starting at `line_start`, as `(start, raw line)`.
pub(crate) fn prev_line(src: &str, line_start: usize) -> Option<(usize, &str)> {
    if line_start == 0 {
        return None;
    }
    let end = line_start - 1; // the '\n' that ends the previous line
    let start = memchr::memrchr(b'\n', &src.as_bytes()[..end]).map_or(0, |i| i + 1);
    Some((start, &src[start..end]))
}

/// Lines of `src` from byte `from` (a line start) on, as `(start, raw line)`.
pub(crate) struct Lines<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(src: &'a str, from: usize) -> Self {
        Lines { src, pos: from }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.src.as_bytes();
        if self.pos >= bytes.len() {
            return None;
        }
        let start = self.pos;
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        self.pos = end + 1;
        Some((start, &self.src[start..end]))
    }
}

/// What a terminal shows of a raw line: CR-LF endings dropped, only the text after the last
/// carriage return (tqdm redraws its bar with `\r`), ANSI escapes removed.
pub(crate) fn visible(raw: &str) -> Cow<'_, str> {
    let line = raw.trim_end_matches('\r');
    let segment = match line.rfind('\r') {
        Some(i) => &line[i + 1..],
        None => line,
    };
    strip_ansi(segment)
}

/// The `\r`-separated piece of `raw` that holds byte offset `at` (relative to `raw`), cleaned.
pub(crate) fn segment_at(raw: &str, at: usize) -> Cow<'_, str> {
    let at = at.min(raw.len());
    let start = raw[..at].rfind('\r').map_or(0, |i| i + 1);
    let end = raw[at..].find('\r').map_or(raw.len(), |i| at + i);
    strip_ansi(&raw[start..end])
}

/// `text` without ANSI escape sequences (CSI such as colours, OSC, and two-byte escapes).
pub(crate) fn strip_ansi(text: &str) -> Cow<'_, str> {
    if memchr::memchr(0x1b, text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut kept_from = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            i += 1;
            continue;
        }
        out.push_str(&text[kept_from..i]);
        i = skip_escape(bytes, i);
        kept_from = i;
    }
    out.push_str(&text[kept_from..]);
    Cow::Owned(out)
}

/// Index just past the escape sequence that starts at `bytes[at] == ESC`.
fn skip_escape(bytes: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    match bytes.get(i) {
        Some(b'[') => {
            i += 1;
            // parameter and intermediate bytes, then one final byte
            while i < bytes.len() && (0x20..=0x3f).contains(&bytes[i]) {
                i += 1;
            }
            if i < bytes.len() && (0x40..=0x7e).contains(&bytes[i]) {
                i += 1;
            }
            i
        }
        Some(b']') => {
            // operating-system command: ends with BEL or ESC '\'
            i += 1;
            while i < bytes.len() {
                if bytes[i] == 0x07 {
                    return i + 1;
                }
                if bytes[i] == 0x1b && bytes.get(i + 1) == Some(&b'\\') {
                    return i + 2;
                }
                i += 1;
            }
            i
        }
        // a two-byte escape; keep multi-byte UTF-8 intact by skipping only ASCII
        Some(b) if b.is_ascii() => i + 1,
        _ => i,
    }
}

/// 1-based line number of byte `pos`.
pub(crate) fn line_number(src: &str, pos: usize) -> usize {
    let pos = pos.min(src.len());
    memchr::memchr_iter(b'\n', &src.as_bytes()[..pos]).count() + 1
}

/// A number as Python prints it (`12.5`, `100`, `1e-05`, `nan`, `inf`, `-inf`).
/// Non-finite values come back as NaN/±inf for the caller to report.
pub(crate) fn parse_number(token: &str) -> Option<f64> {
    let token = token.trim();
    let first = *token.as_bytes().first()?;
    // f64::from_str also takes "infinity"/"NaN" spellings, which is what we want, but it must
    // not take words that merely start like them
    if !(first.is_ascii_digit()
        || first == b'-'
        || first == b'+'
        || first == b'.'
        || first == b'n'
        || first == b'N'
        || first == b'i'
        || first == b'I')
    {
        return None;
    }
    token.parse::<f64>().ok()
}

/// The first whitespace-separated token of `text` parsed as a number.
pub(crate) fn leading_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let value = parse_number(&text[..end])?;
    Some((value, text[end..].trim()))
}

/// A line that is only `ch` repeated (at least 10 times), e.g. the table's closing rule.
pub(crate) fn is_rule(text: &str, ch: u8) -> bool {
    text.len() >= 10 && text.bytes().all(|b| b == ch)
}

/// The last Python traceback in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Crash {
    /// Byte offset of the `Traceback` line.
    pub pos: usize,
    /// The exception line, e.g. `ModuleNotFoundError: No module named 'vllm._C'`.
    pub exception: String,
}

/// How many lines after `Traceback` we look for the exception line.
const TRACEBACK_SCAN_LINES: usize = 400;

/// The traceback whose `Traceback` marker starts at `found`, with its exception line.
pub(crate) fn traceback_at(src: &str, found: usize) -> Crash {
    let (line_start, line_end) = line_bounds(src, found);
    // a log prefix such as "[rank0]: " or "ERROR 01-02 " is repeated on every traceback line
    let prefix = strip_ansi(&src[line_start..found]).into_owned();
    let mut exception = String::from("(no exception line)");
    for (_, raw) in Lines::new(src, line_end + 1).take(TRACEBACK_SCAN_LINES) {
        let line = visible(raw);
        let body = line.strip_prefix(prefix.as_str()).unwrap_or(&line);
        if body.trim().is_empty() || body.starts_with([' ', '\t']) {
            continue;
        }
        exception = truncate(body.trim(), 200);
        break;
    }
    Crash {
        pos: line_start,
        exception,
    }
}

/// `text` cut to at most `max` characters.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_takes_last_carriage_return_segment_and_drops_ansi() {
        assert_eq!(
            visible("  5%|#   | 5/100\r100%|####| 100/100\r"),
            "100%|####| 100/100"
        );
        assert_eq!(visible("\x1b[32mINFO\x1b[0m ready\r"), "INFO ready");
        assert_eq!(visible("plain"), "plain");
    }

    #[test]
    fn strip_ansi_handles_osc_and_truncated_escapes() {
        assert_eq!(strip_ansi("a\x1b]0;title\x07b"), "ab");
        assert_eq!(strip_ansi("a\x1b[1;31"), "a");
        assert_eq!(strip_ansi("é\x1b[0mé"), "éé");
    }

    #[test]
    fn numbers_as_python_prints_them() {
        assert_eq!(parse_number("12.50"), Some(12.5));
        assert_eq!(parse_number("1e-05"), Some(1e-5));
        assert!(parse_number("nan").is_some_and(f64::is_nan));
        assert_eq!(parse_number("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_number("not"), None);
        assert_eq!(parse_number("sglang"), None);
        assert_eq!(leading_number("4.10 requests/s"), Some((4.1, "requests/s")));
    }

    #[test]
    fn traceback_exception_line_with_log_prefix() {
        let log = "ok\n[rank0]: Traceback (most recent call last):\n[rank0]:   File \"x.py\", line 1\n[rank0]:     import vllm._C\n[rank0]: ModuleNotFoundError: No module named 'vllm._C'\n";
        let crash = traceback_at(log, log.find("Traceback").unwrap());
        assert_eq!(
            crash.exception,
            "ModuleNotFoundError: No module named 'vllm._C'"
        );
        assert_eq!(line_number(log, crash.pos), 2);
    }

    #[test]
    fn line_walking() {
        let src = "a\nbb\n\nccc";
        let lines: Vec<_> = Lines::new(src, 0).collect();
        assert_eq!(lines, vec![(0, "a"), (2, "bb"), (5, ""), (6, "ccc")]);
        assert_eq!(prev_line(src, 6), Some((5, "")));
        assert_eq!(prev_line(src, 2), Some((0, "a")));
        assert_eq!(line_bounds(src, 3), (2, 4));
    }
}
