//! Checks of the command-line definition itself: no subcommand option shadows a global one, and
//! every `perfarena …` command line in README.md and docs/*.md parses with the real definition.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};

use crate::Cli;

/// Long and short names an argument answers to (its name and all its aliases).
fn names(arg: &clap::Arg) -> (Vec<String>, Vec<char>) {
    let longs = arg
        .get_long()
        .into_iter()
        .map(str::to_string)
        .chain(
            arg.get_all_aliases()
                .unwrap_or_default()
                .into_iter()
                .map(str::to_string),
        )
        .collect();
    let shorts = arg
        .get_short()
        .into_iter()
        .chain(arg.get_all_short_aliases().unwrap_or_default())
        .collect();
    (longs, shorts)
}

/// Every place in `command`'s tree where a subcommand's own option has a long or short name that
/// a global option of an enclosing command has: `path: --name (global --name)`.
fn collisions(command: &Command) -> Vec<String> {
    fn walk(
        command: &Command,
        path: &str,
        global_longs: &BTreeMap<String, String>,
        global_shorts: &BTreeMap<char, String>,
        out: &mut Vec<String>,
    ) {
        let mut longs = global_longs.clone();
        let mut shorts = global_shorts.clone();
        for arg in command.get_arguments() {
            let id = arg.get_id().to_string();
            let (arg_longs, arg_shorts) = names(arg);
            for long in &arg_longs {
                if let Some(owner) = global_longs.get(long) {
                    out.push(format!("{path}: --{long} (global {owner})"));
                }
            }
            for short in &arg_shorts {
                if let Some(owner) = global_shorts.get(short) {
                    out.push(format!("{path}: -{short} (global {owner})"));
                }
            }
            if arg.is_global_set() {
                for long in arg_longs {
                    longs.insert(long, id.clone());
                }
                for short in arg_shorts {
                    shorts.insert(short, id.clone());
                }
            }
        }
        for sub in command.get_subcommands() {
            walk(
                sub,
                &format!("{path} {}", sub.get_name()),
                &longs,
                &shorts,
                out,
            );
        }
    }
    let mut out = Vec::new();
    walk(
        command,
        command.get_name(),
        &BTreeMap::new(),
        &BTreeMap::new(),
        &mut out,
    );
    out
}

#[test]
fn the_command_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn no_subcommand_option_shares_a_name_with_a_global_option() {
    let found = collisions(&Cli::command());
    assert!(
        found.is_empty(),
        "options that a global option shadows:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_collision_check_finds_a_shadowed_option() {
    // The bug this check exists for: `demo --dir` under the global `-C/--dir`.
    let command = Command::new("tool")
        .arg(clap::Arg::new("dir").short('C').long("dir").global(true))
        .subcommand(
            Command::new("demo")
                .arg(clap::Arg::new("dir").long("dir"))
                .subcommand(Command::new("deeper").arg(clap::Arg::new("x").short('C'))),
        );
    assert_eq!(
        collisions(&command),
        vec![
            "tool demo: --dir (global dir)".to_string(),
            "tool demo deeper: -C (global dir)".to_string()
        ]
    );
}

/// Sample values for the placeholders the docs use in command synopses: ALL-CAPS words and
/// `<angle brackets>`; any other word is literal.
fn sample(word: &str) -> String {
    let placeholder = if word.starts_with('<') && word.ends_with('>') {
        word.trim_matches(|c| c == '<' || c == '>').to_uppercase()
    } else if word.len() > 1 && word.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        word.to_string()
    } else {
        return word.to_string();
    };
    let sample = match placeholder.as_str() {
        "FILE" | "LOG" => "benchmark.log",
        "DIR" => "out",
        "ID" | "RUN" | "RUN_ID" => "r20240101-000000-0001",
        "PCT" | "N" | "ROUND" | "SECONDS" => "2",
        "PREFIX" | "TASK" | "COMMIT" | "REV" => "0123abcd",
        "VARIANT" => "baseline",
        "REGEX" => "x=(\\d+)",
        "KEY" => "ttft_ms.mean",
        "CMD" => "true",
        _ => "name",
    };
    sample.to_string()
}

/// Turns one documented command line (a synopsis or an example) into arguments: the comment is
/// cut, `[optional]` parts are kept, the first of `a|b` alternatives and of `(a | b)` groups is
/// taken, `...` is dropped, and placeholders get sample values.
fn synopsis_to_args(line: &str) -> Result<Vec<String>, String> {
    let line = match line.find(" #") {
        Some(at) => &line[..at],
        None => line,
    };
    // `(--all | --commit PREFIX...)`: keep the first alternative of a group.
    let mut text = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('(') {
        text.push_str(&rest[..open]);
        let close = rest[open..]
            .find(')')
            .map(|at| open + at)
            .ok_or_else(|| format!("unbalanced '(' in {line:?}"))?;
        let group = &rest[open + 1..close];
        text.push_str(group.split(" | ").next().unwrap_or(group));
        rest = &rest[close + 1..];
    }
    text.push_str(rest);
    let text = text.replace(['[', ']'], " ").replace("...", " ");
    let words = shell_words::split(&text).map_err(|err| format!("{err} in {line:?}"))?;
    let mut args = Vec::new();
    for word in words {
        // Shell plumbing ends the perfarena command.
        if matches!(word.as_str(), "|" | "&&" | "||" | ";" | ">" | ">>" | "2>&1") {
            break;
        }
        let word = word.split('|').next().unwrap_or(&word).to_string();
        args.push(match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => format!("{flag}={}", sample(value)),
            _ => sample(&word),
        });
    }
    Ok(args)
}

/// `(file, line number, arguments after "perfarena")` for every perfarena command line in the
/// fenced code blocks of `file` (also `cargo run [--release] -- …`).
fn documented_commands(file: &Path) -> Vec<(PathBuf, usize, String)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (idx, raw) in text.lines().enumerate() {
        if raw.trim_start().starts_with("```") {
            in_block = !in_block;
            pending = None;
            continue;
        }
        if !in_block {
            continue;
        }
        let (start, mut line) = match pending.take() {
            Some((start, head)) => (start, format!("{head} {}", raw.trim())),
            None => (idx + 1, raw.trim().trim_start_matches("$ ").to_string()),
        };
        if line.ends_with('\\') {
            line.pop();
            pending = Some((start, line));
            continue;
        }
        let rest = if let Some(rest) = line.strip_prefix("perfarena ") {
            rest.to_string()
        } else if let Some(at) = line.find(" -- ").filter(|_| line.starts_with("cargo run")) {
            line[at + 4..].to_string()
        } else {
            continue;
        };
        out.push((file.to_path_buf(), start, rest));
    }
    out
}

fn doc_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_documented_command_line_parses() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in doc_files() {
        for (path, line, text) in documented_commands(&file) {
            let shown = format!("{}:{line}: perfarena {text}", path.display());
            let args = match synopsis_to_args(&text) {
                Ok(args) => args,
                Err(err) => {
                    failures.push(format!("{shown}\n    {err}"));
                    continue;
                }
            };
            checked += 1;
            let argv = std::iter::once("perfarena".to_string()).chain(args.iter().cloned());
            match Cli::command().try_get_matches_from(argv) {
                Ok(_) => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        clap::error::ErrorKind::DisplayHelp
                            | clap::error::ErrorKind::DisplayVersion
                    ) => {}
                Err(err) => failures.push(format!(
                    "{shown}\n    as {args:?}: {}",
                    err.to_string().lines().next().unwrap_or_default()
                )),
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} command lines found in the docs"
    );
    assert!(
        failures.is_empty(),
        "documented command lines that the CLI rejects:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_docs_check_rejects_an_unknown_flag_and_reads_synopses() {
    let argv = |text: &str| {
        let args = synopsis_to_args(text).expect("splits");
        std::iter::once("perfarena".to_string())
            .chain(args)
            .collect::<Vec<_>>()
    };
    assert!(
        Cli::command()
            .try_get_matches_from(argv("report --no-such-flag"))
            .is_err()
    );
    assert!(
        Cli::command()
            .try_get_matches_from(argv("no-such-command"))
            .is_err()
    );
    assert_eq!(
        argv("images build (--all | --commit PREFIX...) [--variant baseline|human]  # note"),
        [
            "perfarena",
            "images",
            "build",
            "--all",
            "--variant",
            "baseline"
        ]
    );
    assert!(
        Cli::command()
            .try_get_matches_from(argv("report [--format md|json] [--legacy-threshold PCT]"))
            .is_ok()
    );
}
