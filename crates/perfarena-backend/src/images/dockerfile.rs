//! Reading a Dockerfile for syntax only BuildKit understands (`RUN --mount`, heredocs, …), to
//! choose the builder (`build.builder = "auto"`) and to refuse, before sending anything, a
//! heredoc that the engine's built-in Dockerfile frontend cannot parse. Pure: text in, facts out.

use perfarena_core::suite::BuilderChoice;

/// The builder of the engine a build runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderKind {
    /// The classic builder (API `version=1`): one container per step.
    Classic,
    /// BuildKit (API `version=2`).
    BuildKit,
}

impl BuilderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BuilderKind::Classic => "classic",
            BuilderKind::BuildKit => "BuildKit",
        }
    }
}

/// One use of syntax that only BuildKit reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildKitSyntax {
    /// 1-based line of the instruction (its first line) or of the directive.
    pub line: usize,
    /// What it is, e.g. "RUN --mount", "a heredoc (<<EOF)", "a `# syntax=` directive".
    pub what: String,
    pub heredoc: bool,
}

/// What [`scan`] found in a Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerfileScan {
    /// The `# syntax=` parser directive's value (the frontend image BuildKit pulls), if any.
    pub syntax: Option<String>,
    /// Every use of BuildKit-only syntax, in file order.
    pub buildkit: Vec<BuildKitSyntax>,
}

impl DockerfileScan {
    /// The first use of BuildKit-only syntax.
    pub fn needs_buildkit(&self) -> Option<&BuildKitSyntax> {
        self.buildkit.first()
    }

    /// The first heredoc.
    pub fn first_heredoc(&self) -> Option<&BuildKitSyntax> {
        self.buildkit.iter().find(|s| s.heredoc)
    }
}

/// RUN flags the classic builder rejects ("the --mount option requires BuildKit").
const RUN_FLAGS: &[&str] = &["--mount", "--network", "--security"];
/// COPY/ADD flags the classic builder rejects (`--chown` and `--from` it reads).
const COPY_FLAGS: &[&str] = &[
    "--chmod",
    "--link",
    "--parents",
    "--exclude",
    "--checksum",
    "--keep-git-dir",
];

/// Reads `text` (a Dockerfile) for BuildKit-only syntax. Lines are joined at the escape
/// character (`\`, or the `# escape=` directive's), comment lines inside an instruction are
/// skipped as Docker does, and heredoc bodies are not read as instructions.
pub fn scan(text: &str) -> DockerfileScan {
    let mut out = DockerfileScan::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    // Parser directives: `# key=value` lines at the very top; anything else ends them.
    let mut idx = 0;
    while idx < lines.len() {
        let Some(directive) = lines[idx].trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = directive.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        let value = value.trim();
        match key.as_str() {
            "syntax" => {
                out.syntax = Some(value.to_string());
                out.buildkit.push(BuildKitSyntax {
                    line: idx + 1,
                    what: format!("a `# syntax={value}` directive"),
                    heredoc: false,
                });
            }
            "escape" => {
                if value == "`" {
                    escape = '`';
                }
            }
            "check" => {}
            // An unknown directive is a comment, and a comment ends the directives.
            _ => break,
        }
        idx += 1;
    }
    // Instructions, continuation lines joined; heredoc bodies skipped.
    let mut current: Option<(usize, String)> = None;
    let mut bodies: Vec<(String, bool)> = Vec::new();
    for (idx, raw) in lines.iter().enumerate() {
        if let Some((name, strip_tabs)) = bodies.first() {
            let candidate = if *strip_tabs {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if candidate == name {
                bodies.remove(0);
            }
            continue;
        }
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (start, mut joined) = current.take().unwrap_or((idx + 1, String::new()));
        let continued = trimmed.ends_with(escape);
        joined.push_str(trimmed.strip_suffix(escape).unwrap_or(trimmed));
        joined.push(' ');
        if continued {
            current = Some((start, joined));
            continue;
        }
        bodies = instruction(start, &joined, &mut out.buildkit);
    }
    if let Some((start, joined)) = current {
        instruction(start, &joined, &mut out.buildkit);
    }
    out
}

/// Records the BuildKit-only syntax of one instruction; returns its heredocs' terminators
/// (name, `<<-`: leading tabs stripped), whose bodies follow.
fn instruction(line: usize, text: &str, found: &mut Vec<BuildKitSyntax>) -> Vec<(String, bool)> {
    let words = shell_words(text);
    let mut words = words.iter().map(String::as_str);
    let keyword = words.next().unwrap_or("").to_ascii_uppercase();
    let flags: &[&str] = match keyword.as_str() {
        "RUN" => RUN_FLAGS,
        "COPY" | "ADD" => COPY_FLAGS,
        _ => return Vec::new(),
    };
    let mut heredocs = Vec::new();
    let mut in_flags = true;
    for word in words {
        if in_flags && word.starts_with("--") {
            let flag = word.split('=').next().unwrap_or(word);
            if flags.contains(&flag) {
                found.push(BuildKitSyntax {
                    line,
                    what: format!("{keyword} {flag}"),
                    heredoc: false,
                });
            }
            continue;
        }
        in_flags = false;
        if let Some((name, strip_tabs)) = heredoc_word(word) {
            if heredocs.is_empty() {
                found.push(BuildKitSyntax {
                    line,
                    what: format!("a heredoc ({keyword} <<{name})"),
                    heredoc: true,
                });
            }
            heredocs.push((name, strip_tabs));
        }
    }
    heredocs
}

/// `text` split at whitespace outside quotes, as a shell would (quotes and escapes kept): a
/// `<<` inside a quoted string is not a heredoc.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                word.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                word.push(c);
            }
            (q, '\\') if q != Some('\'') => {
                word.push(c);
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF` (BuildKit's `^(\d*)<<(-?)([^<]*)$`, restricted to a
/// name so that `<<<` here-strings and shifts inside `$((…))` are not taken for one).
fn heredoc_word(word: &str) -> Option<(String, bool)> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (rest, strip_tabs) = match rest.strip_prefix('-') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let rest = rest.trim_start_matches(['"', '\'']);
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let first = name.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    Some((name, strip_tabs))
}

/// The builder for `choice` and a Dockerfile scanned as `scan`, and why (for the build log).
pub fn choose_builder(choice: BuilderChoice, scan: &DockerfileScan) -> (BuilderKind, String) {
    match (choice, scan.needs_buildkit()) {
        (BuilderChoice::Buildkit, _) => {
            (BuilderKind::BuildKit, "build.builder = \"buildkit\"".into())
        }
        (BuilderChoice::Classic, _) => (BuilderKind::Classic, "build.builder = \"classic\"".into()),
        (BuilderChoice::Auto, Some(found)) => (
            BuilderKind::BuildKit,
            format!(
                "build.builder = \"auto\": line {} uses {}",
                found.line, found.what
            ),
        ),
        (BuilderChoice::Auto, None) => (
            BuilderKind::Classic,
            "build.builder = \"auto\": no BuildKit-only syntax".into(),
        ),
    }
}

/// Heredocs need the Dockerfile frontend of Docker Engine 23 or later (dockerfile 1.4): the one
/// built into older engines reads the heredoc's body as instructions ("unknown instruction").
/// `Err(message)` when `dockerfile` (named `name`) would meet such an engine (`engine_version`,
/// as `docker version` says it) without a `# syntax=` line naming a newer frontend. An engine
/// version that cannot be read is let through: the engine answers for itself.
pub fn heredoc_preflight(
    scan: &DockerfileScan,
    name: &str,
    engine_version: Option<&str>,
) -> Result<(), String> {
    let Some(heredoc) = scan.first_heredoc() else {
        return Ok(());
    };
    if scan.syntax.is_some() {
        return Ok(());
    }
    let Some(version) = engine_version else {
        return Ok(());
    };
    let major: Option<u32> = version
        .split(['.', '-', '+'])
        .next()
        .and_then(|m| m.trim_start_matches('v').parse().ok());
    match major {
        Some(major) if major < 23 => Err(format!(
            "{name}:{}: {} needs Docker Engine >= 23 (its built-in Dockerfile frontend reads heredocs); this engine is {version}, whose frontend reads the heredoc's lines as instructions. Upgrade the engine to >= 23, or add `# syntax=docker/dockerfile:1.4` as the Dockerfile's first line (the engine then pulls that frontend image: it needs registry access)",
            heredoc.line, heredoc.what
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(usize, String)> {
        scan(text)
            .buildkit
            .into_iter()
            .map(|s| (s.line, s.what))
            .collect()
    }

    #[test]
    fn plain_dockerfiles_need_nothing() {
        let text = "ARG BASE=x\nFROM ${BASE} AS build\n# RUN --mount=type=cache in a comment\nCOPY --from=build --chown=1:1 a b\nRUN echo $((1<<2)) && cat <<<\"x\" \\\n    && echo --mount=no\nADD a.tar /x\nRUN echo \"a <<EOF\" 'b <<EOF' \"c \\\" <<EOF\"\n";
        assert_eq!(scan(text), DockerfileScan::default());
        assert_eq!(
            choose_builder(BuilderChoice::Auto, &scan(text)).0,
            BuilderKind::Classic
        );
        assert_eq!(
            choose_builder(BuilderChoice::Buildkit, &scan(text)).0,
            BuilderKind::BuildKit
        );
    }

    #[test]
    fn buildkit_syntax_is_found_with_its_line() {
        let text = "FROM base AS build\nRUN --mount=type=cache,target=/root/.cache \\\n    # a comment inside\n    --mount=type=bind,source=.git,target=.git \\\n    pip install .\nrun --network=none true\nCOPY --link a b\nADD --chmod=755 s /s\nCOPY --chown=0:0 --parents a/ /b\nRUN --security=insecure x\n";
        assert_eq!(
            found(text),
            [
                (2, "RUN --mount".to_string()),
                (2, "RUN --mount".to_string()),
                (6, "RUN --network".to_string()),
                (7, "COPY --link".to_string()),
                (8, "ADD --chmod".to_string()),
                (9, "COPY --parents".to_string()),
                (10, "RUN --security".to_string()),
            ]
        );
        let (kind, why) = choose_builder(BuilderChoice::Auto, &scan(text));
        assert_eq!(kind, BuilderKind::BuildKit);
        assert_eq!(why, "build.builder = \"auto\": line 2 uses RUN --mount");
        assert_eq!(
            choose_builder(BuilderChoice::Classic, &scan(text)).0,
            BuilderKind::Classic
        );
    }

    #[test]
    fn heredocs_and_their_bodies() {
        let text = "FROM base\nRUN <<EOF\nRUN --mount=type=cache,target=/x echo body\nEOF\nCOPY <<-\"END\" /etc/x\n\tline\n\tEND\nRUN python3 3<<PY\nprint(1)\nPY\nRUN --mount=type=cache,target=/c true\n";
        let scanned = scan(text);
        assert_eq!(
            found(text),
            [
                (2, "a heredoc (RUN <<EOF)".to_string()),
                (5, "a heredoc (COPY <<END)".to_string()),
                (8, "a heredoc (RUN <<PY)".to_string()),
                (11, "RUN --mount".to_string()),
            ],
            "the body line 3 is not an instruction"
        );
        assert_eq!(scanned.first_heredoc().map(|h| h.line), Some(2));
        assert_eq!(scanned.syntax, None);
    }

    #[test]
    fn directives_only_at_the_top() {
        let text =
            "# syntax=docker/dockerfile:1.4\n# escape=`\nFROM base\nRUN echo a `\n  --mount=no\n";
        let scanned = scan(text);
        assert_eq!(scanned.syntax.as_deref(), Some("docker/dockerfile:1.4"));
        assert_eq!(
            found(text),
            [(
                1,
                "a `# syntax=docker/dockerfile:1.4` directive".to_string()
            )]
        );
        // After a comment or an instruction it is a comment.
        assert_eq!(
            scan("# hello\n# syntax=x\nFROM a\n"),
            DockerfileScan::default()
        );
        assert_eq!(scan("FROM a\n# syntax=x\n"), DockerfileScan::default());
        assert_eq!(
            scan("# other=1\n# syntax=x\nFROM a\n"),
            DockerfileScan::default()
        );
    }

    #[test]
    fn heredocs_need_engine_23_or_a_syntax_line() {
        let heredoc = scan("FROM base\n\nRUN <<EOF\necho hi\nEOF\n");
        let err =
            heredoc_preflight(&heredoc, "docker/Dockerfile", Some("20.10.24+dfsg1")).unwrap_err();
        assert!(
            err.starts_with("docker/Dockerfile:3: a heredoc (RUN <<EOF) needs Docker Engine >= 23")
                && err.contains("this engine is 20.10.24+dfsg1")
                && err.contains("# syntax=docker/dockerfile:1.4"),
            "{err}"
        );
        assert!(heredoc_preflight(&heredoc, "D", Some("23.0.1")).is_ok());
        assert!(heredoc_preflight(&heredoc, "D", Some("27.3.1")).is_ok());
        assert!(heredoc_preflight(&heredoc, "D", None).is_ok());
        assert!(heredoc_preflight(&heredoc, "D", Some("dev")).is_ok());
        let with_syntax = scan("# syntax=docker/dockerfile:1.4\nFROM base\nRUN <<EOF\nx\nEOF\n");
        assert!(heredoc_preflight(&with_syntax, "D", Some("20.10.24")).is_ok());
        let mount_only = scan("FROM base\nRUN --mount=type=cache,target=/c true\n");
        assert!(heredoc_preflight(&mount_only, "D", Some("20.10.24")).is_ok());
    }
}
