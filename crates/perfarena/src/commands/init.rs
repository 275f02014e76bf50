//! `perfarena init`: writes a commented perfarena.toml — the defaults, or a ready-made suite for
//! a project (`--preset vllm|sglang`, embedded from `crates/perfarena/presets/`).

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

use crate::context::Ctx;

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Overwrite an existing suite file.
    #[arg(long)]
    force: bool,
    /// Start from a ready-made suite for a project (docs/presets.md).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
}

/// The ready-made suites.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// vLLM (vllm-project/vllm): its Dockerfile, build args and benchmark eras.
    Vllm,
    /// SGLang (sgl-project/sglang): its Dockerfile, build args and benchmark eras.
    Sglang,
}

impl Preset {
    #[cfg(test)]
    pub const ALL: [Preset; 2] = [Preset::Vllm, Preset::Sglang];

    /// The preset's `perfarena.toml`.
    pub fn text(self) -> &'static str {
        match self {
            Preset::Vllm => include_str!("../../presets/vllm.toml"),
            Preset::Sglang => include_str!("../../presets/sglang.toml"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Vllm => "vllm",
            Preset::Sglang => "sglang",
        }
    }
}

/// The example `perfarena init` writes: the embedded defaults, every key commented.
pub fn example() -> String {
    let mut text = String::from(
        "# perfarena.toml — written by `perfarena init`.\n\
         # Every setting is shown with its default; delete what you do not change.\n\
         # Field-by-field documentation: docs/suite.md.\n\n",
    );
    let body = perfarena_core::suite::DEFAULTS_TOML
        .lines()
        .skip_while(|line| line.starts_with('#') || line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    text.push_str(&body);
    text.push('\n');
    text
}

pub fn run(ctx: &Ctx, args: &InitArgs) -> Result<ExitCode> {
    if ctx.suite_path.exists() && !args.force {
        bail!(
            "{} exists: pass --force to overwrite it",
            ctx.suite_path.display()
        );
    }
    if let Some(parent) = ctx.suite_path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let text = match args.preset {
        Some(preset) => preset.text().to_string(),
        None => example(),
    };
    std::fs::write(&ctx.suite_path, text)
        .with_context(|| format!("cannot write {}", ctx.suite_path.display()))?;
    println!("wrote {}", ctx.suite_path.display());
    if let Some(preset) = args.preset {
        let suite = perfarena_core::Suite::from_toml_str(preset.text(), preset.name())?;
        println!(
            "preset {}: set repo.path to your clone (now {:?}), docker.mounts to your model cache, and images.registry; see docs/presets.md",
            preset.name(),
            suite.repo.path
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_parses_to_the_defaults() {
        let suite =
            perfarena_core::Suite::from_toml_str(&super::example(), "perfarena.toml").unwrap();
        assert_eq!(suite.hash(), perfarena_core::Suite::defaults().hash());
    }

    #[test]
    fn every_preset_parses() {
        for preset in super::Preset::ALL {
            let suite = perfarena_core::Suite::from_toml_str(preset.text(), preset.name()).unwrap();
            assert!(suite.require_runnable().is_ok(), "{}", preset.name());
            assert!(!suite.bench.eras.is_empty());
        }
    }
}
