//! Reading a failed build: was it out of memory (retry with fewer jobs), out of disk (do not
//! retry: fewer jobs will not help), or another error? Returns the evidence line, which the
//! status output shows as the build's excerpt.

/// Lines that mean the compiler (or the build step) was killed for memory. Exit code 137 is
/// SIGKILL, which is what the kernel's OOM killer sends.
const OOM_SIGNATURES: &[&str] = &[
    "Killed signal terminated program",
    "c++: fatal error: Killed",
    "fatal error: Killed",
    "virtual memory exhausted",
    "returned a non-zero code: 137",
    "exit code: 137",
];
const NO_SPACE_SIGNATURES: &[&str] = &["No space left on device", "no space left on device"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    OutOfMemory,
    NoSpace,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildFailure {
    pub kind: FailureKind,
    /// The line that decided it (or the last error-looking line), trimmed.
    pub excerpt: String,
    pub exit_code: Option<i64>,
}

/// Reads a build's log and the engine's final error message.
pub fn classify(log: &str, engine_error: &str) -> BuildFailure {
    let exit_code = exit_code_of(engine_error).or_else(|| log.lines().rev().find_map(exit_code_of));
    let lines: Vec<&str> = log
        .lines()
        .chain(engine_error.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(line) = lines
        .iter()
        .find(|l| NO_SPACE_SIGNATURES.iter().any(|s| l.contains(s)))
    {
        return BuildFailure {
            kind: FailureKind::NoSpace,
            excerpt: clip(line),
            exit_code,
        };
    }
    let oom_line = lines
        .iter()
        .find(|l| OOM_SIGNATURES[..4].iter().any(|s| l.contains(s)));
    if let Some(line) = oom_line {
        return BuildFailure {
            kind: FailureKind::OutOfMemory,
            excerpt: clip(line),
            exit_code,
        };
    }
    if exit_code == Some(137) {
        let line = lines
            .iter()
            .rev()
            .find(|l| OOM_SIGNATURES[4..].iter().any(|s| l.contains(s)))
            .copied()
            .unwrap_or(engine_error);
        return BuildFailure {
            kind: FailureKind::OutOfMemory,
            excerpt: clip(line),
            exit_code,
        };
    }
    BuildFailure {
        kind: FailureKind::Other,
        excerpt: clip(error_line(&lines).unwrap_or(engine_error)),
        exit_code,
    }
}

/// The last line that looks like an error, other than the engine's "returned a non-zero code"
/// (classic builder) or "executor failed running" / "did not complete successfully" (BuildKit,
/// whose log repeats it as `#N ERROR: …`): the step's own error says more.
fn error_line<'a>(lines: &[&'a str]) -> Option<&'a str> {
    let is_engine_line = |l: &str| {
        l.contains("returned a non-zero code")
            || l.contains("executor failed running")
            || l.contains("did not complete successfully")
    };
    lines
        .iter()
        .rev()
        .find(|l| {
            let lower = l.to_ascii_lowercase();
            !is_engine_line(l)
                && (lower.contains("error")
                    || lower.contains("exception")
                    || lower.contains("fatal")
                    || lower.contains("no module named"))
        })
        .copied()
}

/// `… returned a non-zero code: 137` (classic builder) or `… exit code: 137` (BuildKit).
fn exit_code_of(line: &str) -> Option<i64> {
    for marker in ["returned a non-zero code: ", "exit code: "] {
        if let Some(idx) = line.rfind(marker) {
            let digits: String = line[idx + marker.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(code) = digits.parse() {
                return Some(code);
            }
        }
    }
    None
}

fn clip(line: &str) -> String {
    // Strip the ANSI colours the classic builder wraps step output in.
    let mut text = String::with_capacity(line.len());
    let mut chars = line.trim().chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        text.push(c);
    }
    if text.chars().count() > 240 {
        let cut: String = text.chars().take(239).collect();
        return format!("{cut}…");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(log: &str, engine: &str, kind: FailureKind, excerpt: &str, code: Option<i64>) {
        let failure = classify(log, engine);
        assert_eq!(
            (failure.kind, failure.excerpt.as_str(), failure.exit_code),
            (kind, excerpt, code),
            "{log}"
        );
    }

    #[test]
    fn oom_signatures() {
        check(
            "building toyllm._C with MAX_JOBS=4\nc++: fatal error: Killed signal terminated program cc1plus\ncompilation terminated.\n",
            "The command '/bin/sh -c python3 build.py' returned a non-zero code: 137",
            FailureKind::OutOfMemory,
            "c++: fatal error: Killed signal terminated program cc1plus",
            Some(137),
        );
        check(
            "step 3\n",
            "The command '/bin/sh -c make' returned a non-zero code: 137",
            FailureKind::OutOfMemory,
            "The command '/bin/sh -c make' returned a non-zero code: 137",
            Some(137),
        );
        check(
            "gcc: fatal error: Killed\n",
            "process \"/bin/sh -c make\" did not complete successfully: exit code: 1",
            FailureKind::OutOfMemory,
            "gcc: fatal error: Killed",
            Some(1),
        );
    }

    #[test]
    fn buildkit_logs() {
        // BuildKit's log (as TraceText writes it) repeats the engine's error on an ERROR line.
        check(
            "#5 [stage-0 2/2] RUN python3 build.py\n#5 0.120 Traceback (most recent call last):\n#5 0.121 ValueError: bad tile\n#5 ERROR: executor failed running [/bin/sh -c python3 build.py]: exit code: 1\n",
            "executor failed running [/bin/sh -c python3 build.py]: exit code: 1",
            FailureKind::Other,
            "#5 0.121 ValueError: bad tile",
            Some(1),
        );
        check(
            "#5 [stage-0 2/2] RUN exit 3\n#5 ERROR: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3\n",
            "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3",
            FailureKind::Other,
            "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3",
            Some(3),
        );
        check(
            "#5 [stage-0 2/2] RUN make\n#5 ERROR: executor failed running [/bin/sh -c make]: exit code: 137\n",
            "executor failed running [/bin/sh -c make]: exit code: 137",
            FailureKind::OutOfMemory,
            "executor failed running [/bin/sh -c make]: exit code: 137",
            Some(137),
        );
    }

    #[test]
    fn no_space_is_not_oom_even_with_exit_137() {
        check(
            "write error: No space left on device\n",
            "The command '/bin/sh -c make' returned a non-zero code: 137",
            FailureKind::NoSpace,
            "write error: No space left on device",
            Some(137),
        );
    }

    #[test]
    fn other_failures_show_the_last_error_line() {
        check(
            "Traceback (most recent call last):\n  File \"build.py\", line 12\nValueError: could not convert string to float: '64x'\n",
            "The command '/bin/sh -c python3 build.py' returned a non-zero code: 1",
            FailureKind::Other,
            "ValueError: could not convert string to float: '64x'",
            Some(1),
        );
        check(
            "",
            "pull access denied for nothing",
            FailureKind::Other,
            "pull access denied for nothing",
            None,
        );
        check(
            "\u{1b}[91mError: boom\u{1b}[0m\n",
            "",
            FailureKind::Other,
            "Error: boom",
            None,
        );
    }
}
