//! `perfarena images status`: asks the engine and the registry (or, `--offline`, what was
//! recorded) through `perfarena_runner::images_status`, and prints the table or JSON.

use std::process::ExitCode;

use anyhow::{Result, bail};

use perfarena_backend::images::engine::Engine;
use perfarena_runner::images_status::{ImageState, Sources, StatusReport, status_report};

use super::{StatusArgs, read_candidates, registry_client, registry_override};
use crate::context::Ctx;
use crate::progress::note;

pub fn run(ctx: &Ctx, args: &StatusArgs) -> Result<ExitCode> {
    let mut suite = ctx.suite()?;
    let insecure = registry_override(&mut suite, args.registry.as_deref());
    let store = ctx.store()?;
    let tasks = store.tasks()?;
    if tasks.is_empty() {
        bail!("no tasks in the store: import some with `perfarena tasks import FILE`");
    }
    let given = read_candidates(&args.candidates, &tasks)?;
    // --offline: what `images import` and earlier checks recorded, no engine, no registry.
    let recorded = if args.offline {
        Some(super::super::import_images::recorded_index(&store)?)
    } else {
        None
    };
    if let Some((_, sources)) = &recorded {
        note(&format!(
            "note: --offline: no live registry or engine asked; availability as recorded by {}",
            sources.join(", ")
        ));
    }
    let (engine, engine_error) = match Engine::connect() {
        _ if args.offline => (None, Some("--offline".to_string())),
        Ok(engine) => (Some(engine), None),
        Err(err) => (None, Some(err.to_string())),
    };
    let registry = registry_client(insecure);
    let sources = Sources {
        engine: engine.as_ref(),
        engine_error,
        registry: &registry,
        offline: recorded.as_ref().map(|(index, _)| index),
        recorded_builds: args.registry.is_none(),
    };
    let report = status_report(&store, &suite, &tasks, &given, &sources)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// `local+registry`, `local`, `registry`, `missing`, `unknown`…, with the last failed build.
fn cell(state: &ImageState) -> String {
    let place = match (state.local.as_str(), state.registry.as_str()) {
        ("present", "present") => "local+registry".to_string(),
        ("present", "missing") => "local only".to_string(),
        ("present", _) => "local (registry ?)".to_string(),
        ("missing", "present") => "registry".to_string(),
        (_, "present") => "registry (local ?)".to_string(),
        ("missing", "missing") => "missing".to_string(),
        (_, "missing") if state.availability() == "missing" => {
            "missing (registry, as recorded)".to_string()
        }
        _ => "unknown".to_string(),
    };
    if let Some(reason) = &state.permanently_failed {
        return format!("{place}; permanently failed: {reason}");
    }
    match &state.last_build {
        Some(build)
            if !matches!(build.status.as_str(), "success" | "already_exists")
                && state.availability() != "present" =>
        {
            let excerpt = build
                .excerpt
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!("{place}; {}{excerpt}", build.status)
        }
        _ => place,
    }
}

pub fn render_table(report: &StatusReport) -> String {
    let mut out = String::new();
    out.push_str(&format!("# Images — registry {}\n\n", report.registry));
    if let Some(err) = &report.engine_error {
        out.push_str(&format!("warning: local engine not checked: {err}\n\n"));
    }
    out.push_str("| commit | category | human image | baseline image | candidates |\n|---|---|---|---|---|\n");
    for task in &report.tasks {
        let baseline = task
            .baseline
            .as_ref()
            .map(cell)
            .unwrap_or_else(|| "no parent".into());
        let candidates = if task.candidates.is_empty() {
            "—".to_string()
        } else {
            task.candidates
                .iter()
                .map(|c| format!("{}: {}", c.name, cell(&c.state)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            &task.commit[..12.min(task.commit.len())],
            task.category,
            cell(&task.human).replace('|', "\\|"),
            baseline.replace('|', "\\|"),
            candidates.replace('|', "\\|")
        ));
    }
    let s = &report.summary;
    out.push_str("\n## Summary\n\n");
    out.push_str(&format!("- tasks: {}\n", s.tasks));
    out.push_str(&format!("- unique parents: {}\n", s.unique_parents));
    out.push_str(&format!(
        "- baselines: {} existing, {} missing, {} unknown\n",
        s.baselines_existing, s.baselines_missing, s.baselines_unknown
    ));
    out.push_str(&format!(
        "- human images: {} existing, {} missing, {} unknown\n",
        s.humans_existing, s.humans_missing, s.humans_unknown
    ));
    out.push_str(&format!(
        "- candidate images: {} existing, {} missing, {} unknown\n",
        s.candidates_existing, s.candidates_missing, s.candidates_unknown
    ));
    out.push_str(&format!("- permanently failed: {}\n", s.permanently_failed));
    let categories: Vec<String> = s
        .categories
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    out.push_str(&format!("- categories: {}\n", categories.join(", ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(local: &str, registry: &str) -> ImageState {
        ImageState {
            image: "r/x:y".into(),
            local: local.into(),
            registry: registry.into(),
            registry_reason: None,
            digest: None,
            permanently_failed: None,
            last_build: None,
        }
    }

    #[test]
    fn an_unreachable_registry_is_never_missing_in_the_table() {
        assert_eq!(cell(&state("missing", "unknown")), "unknown");
        assert_eq!(cell(&state("present", "unknown")), "local (registry ?)");
    }
}
