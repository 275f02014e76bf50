//! Name and command templates: `{name}` is replaced by a value, `{name:N}` by its first N
//! characters, `{{` and `}}` are literal braces, and `${...}` is left for the shell.
//!
//! Values come from data perfarena does not trust (task rows, paths, candidate names), so a
//! command template is expanded with [`expand_shell`]: every value becomes exactly one shell
//! word, whatever quoting context the placeholder sits in. `{perf_command}` is the one
//! placeholder that is a command by design and is inserted as it is (see `docs/security.md`).

use std::collections::BTreeMap;

/// Placeholders allowed in image name templates.
pub const IMAGE_VARS: &[&str] = &[
    "registry",
    "repo",
    "commit",
    "parent",
    "candidate",
    "patch_sha",
    "task",
];

/// Placeholders allowed in command templates.
pub const COMMAND_VARS: &[&str] = &[
    "model",
    "port",
    "perf_command",
    "commit",
    "parent",
    "variant",
    "workdir",
    "source_dir",
    "attempt_dir",
    "max_jobs",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder `{{{name}}}` (known: {known})")]
    Unknown { name: String, known: String },
    #[error("placeholder `{{{name}}}` has no value here")]
    Missing { name: String },
    #[error("unclosed `{{` at byte {pos}: write `{{{{` for a literal brace")]
    Unclosed { pos: usize },
    #[error("bad width in `{{{spec}}}`: expected `{{name:N}}` with N a positive number")]
    BadWidth { spec: String },
    #[error(
        "placeholder `{{{name}}}` follows a backslash: the escape would apply to the value; remove the backslash"
    )]
    Escaped { name: String },
    #[error(
        "placeholder `{{{name}}}` sits inside backticks, where quoting cannot protect it: write `$(…)` instead"
    )]
    InBackticks { name: String },
}

/// The placeholder whose value is a shell command by design: inserted unquoted.
pub const COMMAND_PLACEHOLDER: &str = "perf_command";

enum Piece<'a> {
    Text(&'a str),
    Var { name: &'a str, width: Option<usize> },
}

/// Splits a template into literal text and placeholders.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut out = Vec::new();
    let bytes = template.as_bytes();
    let mut idx = 0;
    let mut text_start = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'{' if bytes.get(idx + 1) == Some(&b'{') => {
                out.push(Piece::Text(&template[text_start..idx + 1]));
                idx += 2;
                text_start = idx;
            }
            b'}' if bytes.get(idx + 1) == Some(&b'}') => {
                out.push(Piece::Text(&template[text_start..idx + 1]));
                idx += 2;
                text_start = idx;
            }
            b'{' if idx > 0 && bytes[idx - 1] == b'$' => {
                // `${VAR}`: a shell expansion, copied as it is.
                let end = template[idx..]
                    .find('}')
                    .ok_or(TemplateError::Unclosed { pos: idx })?;
                idx += end + 1;
            }
            b'{' => {
                let end = template[idx..]
                    .find('}')
                    .ok_or(TemplateError::Unclosed { pos: idx })?;
                out.push(Piece::Text(&template[text_start..idx]));
                let spec = &template[idx + 1..idx + end];
                let (name, width) = match spec.split_once(':') {
                    Some((name, width)) => {
                        let width: usize =
                            width.parse().ok().filter(|w| *w > 0).ok_or_else(|| {
                                TemplateError::BadWidth {
                                    spec: spec.to_string(),
                                }
                            })?;
                        (name, Some(width))
                    }
                    None => (spec, None),
                };
                out.push(Piece::Var { name, width });
                idx += end + 1;
                text_start = idx;
            }
            _ => idx += 1,
        }
    }
    out.push(Piece::Text(&template[text_start..]));
    Ok(out)
}

/// Checks that `template` only uses placeholders from `known`.
pub fn check(template: &str, known: &[&str]) -> Result<(), TemplateError> {
    for piece in pieces(template)? {
        if let Piece::Var { name, .. } = piece {
            if !known.contains(&name) {
                return Err(TemplateError::Unknown {
                    name: name.to_string(),
                    known: known.join(", "),
                });
            }
        }
    }
    Ok(())
}

/// Expands `template` with `vars`; a placeholder without a value is an error.
pub fn expand(template: &str, vars: &BTreeMap<&str, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 32);
    for piece in pieces(template)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Var { name, width } => {
                let value = vars.get(name).ok_or_else(|| TemplateError::Missing {
                    name: name.to_string(),
                })?;
                match width {
                    Some(width) => out.extend(value.chars().take(width)),
                    None => out.push_str(value),
                }
            }
        }
    }
    Ok(out)
}

/// One shell word whose value is exactly `value`, for a POSIX shell or bash.
///
/// `shell_words::quote` leaves `{`, `}`, `!` and `^` bare; bash (which is `/bin/sh` in some
/// images) brace-expands `{a,b}` into two words, so a value with them is single-quoted here.
pub fn shell_word(value: &str) -> String {
    match shell_words::quote(value) {
        std::borrow::Cow::Borrowed(bare) if bare.contains(['{', '}', '!', '^']) => {
            format!("'{bare}'")
        }
        quoted => quoted.into_owned(),
    }
}

/// Where the shell is when it reads a placeholder.
#[derive(Clone, Copy, PartialEq)]
enum Quoting {
    /// Outside quotes (also the body of a `$(…)`), with its open `(` count.
    Plain(u32),
    Single,
    Double,
    Backtick,
}

/// Follows `text` through a POSIX shell's quoting; returns whether it ends on a pending `\`.
fn follow_quoting(stack: &mut Vec<Quoting>, text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let top = stack.last().copied().unwrap_or(Quoting::Plain(0));
        match (top, c) {
            (Quoting::Single, '\'') => {
                stack.pop();
            }
            (Quoting::Single, _) => {}
            (_, '\\') if chars.next().is_none() => return true,
            (_, '\\') => {}
            (_, '$') if chars.peek() == Some(&'(') => {
                chars.next();
                stack.push(Quoting::Plain(0));
            }
            (Quoting::Double, '"') => {
                stack.pop();
            }
            (Quoting::Double, '`') => stack.push(Quoting::Backtick),
            (Quoting::Double, _) => {}
            (Quoting::Backtick, '`') => {
                stack.pop();
            }
            (_, '`') => stack.push(Quoting::Backtick),
            (_, '\'') => stack.push(Quoting::Single),
            (_, '"') => stack.push(Quoting::Double),
            (Quoting::Plain(open), '(') => {
                stack.pop();
                stack.push(Quoting::Plain(open + 1));
            }
            (Quoting::Plain(open), ')') => {
                stack.pop();
                if open > 0 {
                    stack.push(Quoting::Plain(open - 1));
                }
                if stack.is_empty() {
                    stack.push(Quoting::Plain(0));
                }
            }
            _ => {}
        }
    }
    false
}

/// Expands a command template for `sh -c`: each value is inserted as exactly one shell word
/// with exactly its text, in any quoting context (`{x}`, `"--a={x}"`, `'{x}'`, `$(f {x})`);
/// [`COMMAND_PLACEHOLDER`] is inserted unquoted. A placeholder without a value is an error.
pub fn expand_shell(
    template: &str,
    vars: &BTreeMap<&str, String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut stack = vec![Quoting::Plain(0)];
    let mut escaped = false;
    for piece in pieces(template)? {
        match piece {
            Piece::Text(text) => {
                out.push_str(text);
                escaped = follow_quoting(&mut stack, text);
            }
            Piece::Var { name, width } => {
                let value = vars.get(name).ok_or_else(|| TemplateError::Missing {
                    name: name.to_string(),
                })?;
                let value: String = match width {
                    Some(width) => value.chars().take(width).collect(),
                    None => value.clone(),
                };
                if name == COMMAND_PLACEHOLDER {
                    out.push_str(&value);
                    escaped = follow_quoting(&mut stack, &value);
                    continue;
                }
                if escaped {
                    return Err(TemplateError::Escaped {
                        name: name.to_string(),
                    });
                }
                let word = shell_word(&value);
                match stack.last() {
                    Some(Quoting::Backtick) => {
                        return Err(TemplateError::InBackticks {
                            name: name.to_string(),
                        });
                    }
                    // Close the quotes, add the word, reopen them: one word all the same.
                    Some(Quoting::Double) => out.push_str(&format!("\"{word}\"")),
                    Some(Quoting::Single) => out.push_str(&format!("'{word}'")),
                    _ => out.push_str(&word),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("registry", "localhost:5000".to_string()),
            ("repo", "vllm".to_string()),
            (
                "commit",
                "35fad35a485eac9195c510731ba4a9d297dfd963".to_string(),
            ),
            (
                "parent",
                "733e7c9e95f5b066ac420b00701eef7ea164a79e".to_string(),
            ),
            ("port", "8000".to_string()),
        ])
    }

    #[test]
    fn expands_names_and_widths() {
        let v = vars();
        assert_eq!(
            expand("{registry}/{repo}:baseline-{parent:12}", &v).unwrap(),
            "localhost:5000/vllm:baseline-733e7c9e95f5"
        );
        assert_eq!(
            expand("{registry}/{repo}:{commit}", &v).unwrap(),
            "localhost:5000/vllm:35fad35a485eac9195c510731ba4a9d297dfd963"
        );
        assert_eq!(expand("{commit:100}", &v).unwrap().len(), 40);
    }

    #[test]
    fn braces_and_shell_variables_pass_through() {
        let v = vars();
        assert_eq!(
            expand("echo {{x}} ${HOME} {port}", &v).unwrap(),
            "echo {x} ${HOME} 8000"
        );
        assert_eq!(expand("plain text", &v).unwrap(), "plain text");
        assert_eq!(expand("", &v).unwrap(), "");
    }

    #[test]
    fn errors_name_the_placeholder() {
        let v = vars();
        assert_eq!(
            expand("{model}", &v),
            Err(TemplateError::Missing {
                name: "model".into()
            })
        );
        assert!(matches!(
            expand("{commit:x}", &v),
            Err(TemplateError::BadWidth { .. })
        ));
        assert!(matches!(
            expand("{commit:0}", &v),
            Err(TemplateError::BadWidth { .. })
        ));
        assert!(matches!(
            expand("a {commit", &v),
            Err(TemplateError::Unclosed { pos: 2 })
        ));
        let err = check("{registry}/{nope}", IMAGE_VARS).unwrap_err();
        assert!(err.to_string().contains("`{nope}`"), "{err}");
        assert!(check("{registry}/{repo}:{candidate}-{patch_sha:12}", IMAGE_VARS).is_ok());
    }

    /// Runs `sh -c` on `script` in `dir`; returns its stdout.
    fn sh(script: &str, dir: &std::path::Path) -> Vec<u8> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .expect("sh runs");
        out.stdout
    }

    /// Templates that put a placeholder in each quoting context a suite may use.
    const CONTEXTS: &[&str] = &[
        "printf '%s\\0' {v}",
        "printf '%s\\0' \"{v}\"",
        "printf '%s\\0' '{v}'",
        "printf '%s\\0' --x={v}",
        "printf '%s\\0' \"--x={v}\"",
        "printf '%s\\0' \"$(printf '%s' {v})\"",
    ];

    fn expected(template: &str, value: &str) -> Vec<u8> {
        let prefix = if template.contains("--x=") {
            "--x="
        } else {
            ""
        };
        format!("{prefix}{value}\0").into_bytes()
    }

    #[test]
    fn hostile_values_arrive_as_one_unchanged_word() {
        let dir = tempfile_dir();
        for value in [
            "x$(touch marker)",
            "`touch marker`",
            "a; touch marker",
            "' ; touch marker; '",
            "\" ; touch marker; \"",
            "a\nb",
            "{a,b}",
            "",
            "$HOME",
            "\\",
            "it's",
            "--model=x y",
            "*",
            "\u{e9}t\u{e9} \u{1F600}",
        ] {
            for template in CONTEXTS {
                let vars = BTreeMap::from([("v", value.to_string())]);
                let script = expand_shell(template, &vars).unwrap();
                // Command substitutions drop trailing newlines: compare what a shell keeps.
                let want = if template.contains("$(") {
                    expected(template, value.trim_end_matches('\n'))
                } else {
                    expected(template, value)
                };
                assert_eq!(
                    String::from_utf8_lossy(&sh(&script, &dir)),
                    String::from_utf8_lossy(&want),
                    "{template} with {value:?}: {script}"
                );
            }
        }
        assert!(!dir.join("marker").exists(), "a value ran as code");
    }

    #[test]
    fn perf_command_is_a_command_and_escapes_are_refused() {
        let vars = BTreeMap::from([
            (
                "perf_command",
                "python3 bench.py --n 2 && echo done".to_string(),
            ),
            ("model", "m".to_string()),
        ]);
        assert_eq!(
            expand_shell("{perf_command}", &vars).unwrap(),
            "python3 bench.py --n 2 && echo done"
        );
        assert!(matches!(
            expand_shell("echo \\{model}", &vars),
            Err(TemplateError::Escaped { .. })
        ));
        assert!(matches!(
            expand_shell("echo \"`echo {model}`\"", &vars),
            Err(TemplateError::InBackticks { .. })
        ));
        // Plain values stay readable.
        assert_eq!(
            expand_shell("serve --model {model} --port {model}", &vars).unwrap(),
            "serve --model m --port m"
        );
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "perfarena-template-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]
        /// Any string (no NUL: it cannot be an argument) through every command placeholder and
        /// quoting context arrives as one unchanged argument, and nothing else runs.
        #[test]
        fn any_value_is_one_unchanged_argument(
            value in "[^\u{0}]{0,40}",
            which in 0..COMMAND_VARS.len(),
            context in 0..3usize,
        ) {
            let name = COMMAND_VARS[which];
            proptest::prop_assume!(name != COMMAND_PLACEHOLDER);
            let dir = tempfile_dir();
            let template = CONTEXTS[context].replace("{v}", &format!("{{{name}}}"));
            let vars = BTreeMap::from([(name, value.clone())]);
            let script = expand_shell(&template, &vars).unwrap();
            let got = sh(&script, &dir);
            let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
            let _ = std::fs::remove_dir_all(&dir);
            proptest::prop_assert_eq!(got, expected(&template, &value), "{}", script);
            proptest::prop_assert!(left.is_empty(), "files created by {}", script);
        }
    }
}
