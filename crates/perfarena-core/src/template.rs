//! Name and command templates: `{name}` is replaced by a value, `{name:N}` by its first N
//! characters, `{{` and `}}` are literal braces, and `${...}` is left for the shell.

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
}

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
}
