//! Benchmark eras (`[[bench.eras]]`): the commands that fit a task's point in its project's
//! history, chosen from facts about the task (a file present at its parent, its date, its kind).
//!
//! Projects change how they are benchmarked: vLLM's server moved from
//! `python -m vllm.entrypoints.openai.api_server` to `vllm serve`, its client from
//! `benchmarks/benchmark_serving.py` to `vllm bench serve`, its Dockerfile into `docker/`. An era
//! names such a period by a selector and overrides the plain `[bench]` commands for it; the first
//! era whose selector matches wins, none matching means the plain commands.
//!
//! Pure: the facts come in through [`Facts`], whose `exists` answers whatever way the caller can
//! (the runner asks git, tests a set of paths).

use serde::{Deserialize, Serialize};

use crate::task::BenchKind;

/// One era: a selector and the commands it overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Era {
    /// A short name, recorded with every attempt that used the era.
    pub name: String,
    /// Selects the era when this path exists in the repository (at the task's parent commit for
    /// commands, at the commit built for `dockerfile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_exists: Option<String>,
    /// Selects the era from this date on (inclusive, `YYYY-MM-DD`), compared with the task's
    /// `pr_date`, else its commit date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Selects the era before this date (exclusive, `YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Selects the era only for these benchmark kinds (`serving`, `latency`, `throughput`,
    /// `unknown`); empty: any kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<BenchKind>,
    /// Overrides of `bench.setup`, `bench.server`, `bench.client` and `bench.readiness.url`
    /// (`server = ""` runs the client alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_url: Option<String>,
    /// Override of `build.dockerfile` for images of commits in this era.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Build arguments for images of commits in this era (checked at the commit built), over
    /// `build.args` and under a commit's `[build.overrides]`. `{commit}` in a value is the full
    /// hash of the commit built (e.g. vLLM's `VLLM_MERGE_BASE_COMMIT = "{commit}"`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub build_args: std::collections::BTreeMap<String, String>,
}

/// What is known about a task when its era is chosen.
pub struct Facts<'a> {
    /// Whether a path exists in the repository at the revision the era is chosen for. Asked
    /// lazily, only for eras that get that far.
    pub exists: &'a dyn Fn(&str) -> bool,
    /// The task's date (`pr_date`, else the commit date), any format starting `YYYY-MM-DD`;
    /// `None`: unknown, and eras selecting by date do not match.
    pub date: Option<String>,
    /// The task's benchmark kind.
    pub kind: BenchKind,
}

/// The era chosen and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selection<'a> {
    pub era: &'a Era,
    /// What matched, e.g. `vllm/benchmarks/serve.py exists; date 2025-05-02 >= 2025-01-01`.
    pub reason: String,
}

/// The commands of one task after its era is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BenchCommands {
    /// The era's name; `None`: the plain `[bench]` commands.
    pub era: Option<String>,
    pub reason: Option<String>,
    pub setup: String,
    pub server: String,
    pub client: String,
    pub readiness_url: String,
}

/// The first era overriding a command whose selector matches `facts`. Eras that only set
/// `dockerfile` are layout eras, skipped here (see [`dockerfile`]).
pub fn select<'a>(eras: &'a [Era], facts: &Facts) -> Option<Selection<'a>> {
    eras.iter()
        .filter(|era| era.overrides_commands())
        .find_map(|era| matches(era, facts).map(|reason| Selection { era, reason }))
}

impl Era {
    /// Whether the era replaces any of the bench commands.
    pub fn overrides_commands(&self) -> bool {
        self.setup.is_some()
            || self.server.is_some()
            || self.client.is_some()
            || self.readiness_url.is_some()
    }
}

/// Why `era` matches `facts`, or `None` when it does not. Cheap checks (kind, dates) come
/// before `exists`.
pub fn matches(era: &Era, facts: &Facts) -> Option<String> {
    let mut reasons = Vec::new();
    if !era.kinds.is_empty() {
        if !era.kinds.contains(&facts.kind) {
            return None;
        }
        reasons.push(format!("kind {}", facts.kind.as_str()));
    }
    if era.since.is_some() || era.until.is_some() {
        let date = day(facts.date.as_deref()?)?;
        if let Some(since) = era.since.as_deref().and_then(day) {
            if date < since {
                return None;
            }
            reasons.push(format!("date {date} >= {since}"));
        }
        if let Some(until) = era.until.as_deref().and_then(day) {
            if date >= until {
                return None;
            }
            reasons.push(format!("date {date} < {until}"));
        }
    }
    if let Some(path) = &era.when_exists {
        if !(facts.exists)(path) {
            return None;
        }
        reasons.push(format!("{path} exists"));
    }
    Some(reasons.join("; "))
}

/// The Dockerfile of an image: that of the first matching era that sets one, else `default`
/// (`build.dockerfile`). Eras without `dockerfile` are skipped, so command eras and layout eras
/// can be listed side by side.
pub fn dockerfile(eras: &[Era], default: &str, facts: &Facts) -> String {
    eras.iter()
        .filter(|era| era.dockerfile.is_some())
        .find(|era| matches(era, facts).is_some())
        .and_then(|era| era.dockerfile.clone())
        .unwrap_or_else(|| default.to_string())
}

/// The build arguments the eras add for an image of `commit`: those of the first matching era
/// that sets any, `{commit}` filled in; empty when none matches.
pub fn build_args(
    eras: &[Era],
    facts: &Facts,
    commit: &str,
) -> std::collections::BTreeMap<String, String> {
    eras.iter()
        .filter(|era| !era.build_args.is_empty())
        .find(|era| matches(era, facts).is_some())
        .map(|era| {
            era.build_args
                .iter()
                .map(|(k, v)| (k.clone(), v.replace("{commit}", commit)))
                .collect()
        })
        .unwrap_or_default()
}

/// The `YYYY-MM-DD` prefix of a date, when it has one.
pub fn day(text: &str) -> Option<&str> {
    let prefix = text.trim().get(..10)?;
    let bytes = prefix.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    let ok = digits(0..4) && bytes[4] == b'-' && digits(5..7) && bytes[7] == b'-' && digits(8..10);
    ok.then_some(prefix)
}

/// Checks the eras of a suite; `Err((key path, message))` for the first problem.
pub fn validate(eras: &[Era]) -> Result<(), (String, String)> {
    let mut names = std::collections::BTreeSet::new();
    for (idx, era) in eras.iter().enumerate() {
        let at = |key: &str| format!("bench.eras[{idx}].{key}");
        if era.name.trim().is_empty() {
            return Err((
                at("name"),
                "an era needs a name (recorded with its attempts)".into(),
            ));
        }
        if !names.insert(era.name.as_str()) {
            return Err((
                at("name"),
                format!("two eras are named {:?}: names must be unique", era.name),
            ));
        }
        if era.when_exists.is_none()
            && era.since.is_none()
            && era.until.is_none()
            && era.kinds.is_empty()
        {
            return Err((
                at("name"),
                format!(
                    "era {:?} has no selector: set when_exists, since, until or kinds",
                    era.name
                ),
            ));
        }
        if let Some(path) = &era.when_exists {
            if path.trim().is_empty() || path.starts_with('/') {
                return Err((
                    at("when_exists"),
                    "must be a path relative to the repository root, e.g. \"vllm/benchmarks/serve.py\"".into(),
                ));
            }
        }
        for (key, value) in [("since", &era.since), ("until", &era.until)] {
            if let Some(value) = value {
                if day(value).is_none() || value.trim().len() != 10 {
                    return Err((
                        at(key),
                        format!("{value:?} is not a date: write YYYY-MM-DD"),
                    ));
                }
            }
        }
        if let (Some(since), Some(until)) = (&era.since, &era.until) {
            if since >= until {
                return Err((
                    at("until"),
                    format!("{until} is not after since = {since}: no date would match"),
                ));
            }
        }
        for (key, template) in [
            ("setup", &era.setup),
            ("server", &era.server),
            ("client", &era.client),
            ("readiness_url", &era.readiness_url),
        ] {
            if let Some(template) = template {
                crate::template::check(template, crate::template::COMMAND_VARS)
                    .map_err(|e| (at(key), e.to_string()))?;
            }
        }
        if !era.overrides_commands() && era.dockerfile.is_none() && era.build_args.is_empty() {
            return Err((
                at("name"),
                format!(
                    "era {:?} overrides nothing: set setup, server, client, readiness_url, dockerfile or build_args",
                    era.name
                ),
            ));
        }
        for (key, value) in &era.build_args {
            let rest = value.replace("{commit}", "");
            if key.trim().is_empty() || rest.contains('{') || rest.contains('}') {
                return Err((
                    at(&format!("build_args.{key}")),
                    format!(
                        "{value:?}: a build argument may use only {{commit}} (the commit built)"
                    ),
                ));
            }
        }
        if let Some(dockerfile) = &era.dockerfile {
            if dockerfile.trim().is_empty() {
                return Err((
                    at("dockerfile"),
                    "empty: remove the key to keep build.dockerfile".into(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::suite::Suite;

    fn suite(eras: &str) -> Suite {
        let text = format!(
            "[bench]\nserver = \"old-server {{model}} {{port}}\"\nclient = \"old-client {{port}}\"\n{eras}"
        );
        Suite::from_toml_str(&text, "s.toml").unwrap()
    }

    const ERAS: &str = r#"
[[bench.eras]]
name = "standalone"
kinds = ["latency", "throughput"]
server = ""
client = "latency {model}"

[[bench.eras]]
name = "cli"
when_exists = "pkg/benchmarks/serve.py"
server = "pkg serve {model} --port {port}"
client = "pkg bench serve --port {port}"
readiness_url = "http://127.0.0.1:{port}/ping"
dockerfile = "docker/Dockerfile"

[[bench.eras]]
name = "mid"
since = "2024-06-12"
until = "2025-01-01"
server = "pkg serve {model} --port {port}"
"#;

    /// The era and commands chosen for (files present, date, kind).
    fn check(
        files: &[&str],
        date: Option<&str>,
        kind: BenchKind,
    ) -> (Option<String>, String, String, String) {
        let present: BTreeSet<&str> = files.iter().copied().collect();
        let exists = |path: &str| present.contains(path);
        let facts = Facts {
            exists: &exists,
            date: date.map(str::to_string),
            kind,
        };
        let chosen = suite(ERAS).bench.commands(&facts);
        (
            chosen.era,
            chosen.server,
            chosen.client,
            chosen.readiness_url,
        )
    }

    #[test]
    fn the_first_matching_era_wins_and_none_means_the_plain_commands() {
        let (era, server, client, url) = check(
            &["pkg/benchmarks/serve.py"],
            Some("2024-07-01"),
            BenchKind::Serving,
        );
        assert_eq!(era.as_deref(), Some("cli"));
        assert_eq!(server, "pkg serve {model} --port {port}");
        assert_eq!(client, "pkg bench serve --port {port}");
        assert_eq!(url, "http://127.0.0.1:{port}/ping");

        // `mid` overrides the server only; the client and url stay plain.
        let (era, server, client, url) =
            check(&[], Some("2024-07-01T10:00:00Z"), BenchKind::Serving);
        assert_eq!(era.as_deref(), Some("mid"));
        assert_eq!(
            (server.as_str(), client.as_str()),
            ("pkg serve {model} --port {port}", "old-client {port}")
        );
        assert_eq!(url, "http://127.0.0.1:{port}/health");

        assert_eq!(check(&[], Some("2024-01-01"), BenchKind::Serving).0, None);
        assert_eq!(
            check(&[], None, BenchKind::Serving).0,
            None,
            "an unknown date matches no date era"
        );
        let (era, server, ..) = check(&[], Some("2023-01-01"), BenchKind::Unknown);
        assert_eq!((era, server.as_str()), (None, "old-server {model} {port}"));
    }

    #[test]
    fn since_is_inclusive_and_until_exclusive() {
        assert_eq!(
            check(&[], Some("2024-06-12"), BenchKind::Serving)
                .0
                .as_deref(),
            Some("mid")
        );
        assert_eq!(check(&[], Some("2024-06-11"), BenchKind::Serving).0, None);
        assert_eq!(
            check(&[], Some("2024-12-31"), BenchKind::Serving)
                .0
                .as_deref(),
            Some("mid")
        );
        assert_eq!(check(&[], Some("2025-01-01"), BenchKind::Serving).0, None);
    }

    #[test]
    fn kinds_select_standalone_commands_and_an_empty_server_means_none() {
        let (era, server, client, _) = check(
            &["pkg/benchmarks/serve.py"],
            Some("2025-03-01"),
            BenchKind::Latency,
        );
        assert_eq!(era.as_deref(), Some("standalone"));
        assert_eq!((server.as_str(), client.as_str()), ("", "latency {model}"));
    }

    #[test]
    fn exists_is_not_asked_when_a_cheaper_check_fails() {
        let asked = std::cell::Cell::new(0);
        let exists = |_: &str| {
            asked.set(asked.get() + 1);
            true
        };
        let era = Era {
            kinds: vec![BenchKind::Latency],
            ..era("k", Some("x"))
        };
        let facts = Facts {
            exists: &exists,
            date: None,
            kind: BenchKind::Serving,
        };
        assert_eq!(matches(&era, &facts), None);
        assert_eq!(asked.get(), 0);
        let facts = Facts {
            exists: &exists,
            date: None,
            kind: BenchKind::Latency,
        };
        assert_eq!(
            matches(&era, &facts).as_deref(),
            Some("kind latency; x exists")
        );
        assert_eq!(asked.get(), 1);
    }

    fn era(name: &str, when_exists: Option<&str>) -> Era {
        Era {
            name: name.into(),
            when_exists: when_exists.map(str::to_string),
            since: None,
            until: None,
            kinds: Vec::new(),
            setup: None,
            server: None,
            client: None,
            readiness_url: None,
            dockerfile: None,
            build_args: Default::default(),
        }
    }

    #[test]
    fn layout_eras_do_not_stop_the_command_search() {
        let eras = format!(
            "[[bench.eras]]\nname = \"layout\"\nwhen_exists = \"docker/Dockerfile\"\ndockerfile = \"docker/Dockerfile\"\n{ERAS}"
        );
        let present = |path: &str| path == "docker/Dockerfile";
        let facts = Facts {
            exists: &present,
            date: Some("2024-07-01".into()),
            kind: BenchKind::Serving,
        };
        let bench = suite(&eras).bench;
        assert_eq!(bench.commands(&facts).era.as_deref(), Some("mid"));
        assert_eq!(
            dockerfile(&bench.eras, "Dockerfile", &facts),
            "docker/Dockerfile"
        );
    }

    #[test]
    fn the_dockerfile_comes_from_the_first_layout_era() {
        let eras = suite(ERAS).bench.eras;
        let with = |path: &'static str| move |p: &str| p == path;
        let new = with("pkg/benchmarks/serve.py");
        let facts = Facts {
            exists: &new,
            date: None,
            kind: BenchKind::Serving,
        };
        assert_eq!(dockerfile(&eras, "Dockerfile", &facts), "docker/Dockerfile");
        let old = with("nothing");
        let facts = Facts {
            exists: &old,
            date: Some("2024-07-01".into()),
            kind: BenchKind::Serving,
        };
        assert_eq!(
            dockerfile(&eras, "Dockerfile", &facts),
            "Dockerfile",
            "`mid` matches but sets no dockerfile"
        );
    }

    #[test]
    fn dates_are_read_from_their_first_ten_characters() {
        assert_eq!(day("2024-06-12"), Some("2024-06-12"));
        assert_eq!(day(" 2024-06-12T01:02:03+02:00"), Some("2024-06-12"));
        assert_eq!(day("2024-6-12"), None);
        assert_eq!(day("12/06/2024"), None);
        assert_eq!(day("2024"), None);
    }

    #[test]
    fn bad_eras_are_named_by_their_path() {
        for (eras, path, words) in [
            (
                "[[bench.eras]]\nname = \"\"\nsince = \"2024-01-01\"\nclient = \"x\"\n",
                "bench.eras[0].name",
                "needs a name",
            ),
            (
                "[[bench.eras]]\nname = \"a\"\nclient = \"x\"\n",
                "bench.eras[0].name",
                "no selector",
            ),
            (
                "[[bench.eras]]\nname = \"a\"\nsince = \"2024-01-01\"\nclient = \"x\"\n[[bench.eras]]\nname = \"a\"\nuntil = \"2024-01-01\"\nclient = \"x\"\n",
                "bench.eras[1].name",
                "unique",
            ),
            (
                "[[bench.eras]]\nname = \"a\"\nsince = \"June 2024\"\nclient = \"x\"\n",
                "bench.eras[0].since",
                "YYYY-MM-DD",
            ),
            (
                "[[bench.eras]]\nname = \"a\"\nsince = \"2024-01-01\"\n",
                "bench.eras[0].name",
                "overrides nothing",
            ),
            (
                "[[bench.eras]]\nname = \"a\"\nsince = \"2025-01-01\"\nuntil = \"2024-01-01\"\nclient = \"x\"\n",
                "bench.eras[0].until",
                "not after",
            ),
            (
                "[[bench.eras]]\nname = \"a\"\nwhen_exists = \"/abs\"\nclient = \"x\"\n",
                "bench.eras[0].when_exists",
                "relative",
            ),
            (
                "[[bench.eras]]\nname = \"a\"\nwhen_exists = \"x\"\nclient = \"{sha}\"\n",
                "bench.eras[0].client",
                "sha",
            ),
            (
                "[[bench.eras]]\nname = \"a\"\nwhen_exists = \"x\"\nkinds = [\"fast\"]\n",
                "bench.eras[0].kinds",
                "unknown variant",
            ),
            (
                "[[bench.eras]]\nname = \"a\"\nwhen_exists = \"x\"\nclinet = \"y\"\n",
                "bench.eras[0]",
                "unknown field",
            ),
        ] {
            let err = Suite::from_toml_str(eras, "s.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(path) && err.contains(words),
                "{eras}\n=> {err}"
            );
        }
        assert!(suite(ERAS).bench.eras.len() == 3);
        assert!(Suite::defaults().bench.eras.is_empty());
    }

    #[test]
    fn build_args_come_from_the_first_matching_era_that_sets_them() {
        let suite = suite(
            r#"
[[bench.eras]]
name = "cli"
when_exists = "pkg/benchmarks/serve.py"
server = "pkg serve {model} --port {port}"

[[bench.eras]]
name = "wheel"
since = "2025-12-19"
build_args = { USE_PRECOMPILED = "1", MERGE_BASE = "{commit}" }

[[bench.eras]]
name = "old-wheel"
since = "2025-01-01"
build_args = { USE_PRECOMPILED = "0" }
"#,
        );
        let exists = |_: &str| true;
        let facts = |date: &str| Facts {
            exists: &exists,
            date: Some(date.into()),
            kind: BenchKind::Serving,
        };
        let args = build_args(&suite.bench.eras, &facts("2026-01-05"), "abc123");
        assert_eq!(args.get("MERGE_BASE").map(String::as_str), Some("abc123"));
        assert_eq!(args.get("USE_PRECOMPILED").map(String::as_str), Some("1"));
        let args = build_args(&suite.bench.eras, &facts("2025-06-01"), "abc123");
        assert_eq!(args.len(), 1);
        assert_eq!(args["USE_PRECOMPILED"], "0");
        assert!(build_args(&suite.bench.eras, &facts("2024-06-01"), "abc").is_empty());
        // A build-args era overrides no command.
        assert_eq!(
            suite.bench.commands(&facts("2026-01-05")).era.as_deref(),
            Some("cli")
        );
        let bad = Suite::from_toml_str(
            "[[bench.eras]]\nname = \"w\"\nsince = \"2025-01-01\"\nbuild_args = { X = \"{parent}\" }\n",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("bench.eras[0].build_args.X"), "{bad}");
    }
}
