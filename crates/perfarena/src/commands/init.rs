//! `perfarena init`: writes a commented perfarena.toml.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};

use crate::context::Ctx;

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Overwrite an existing suite file.
    #[arg(long)]
    force: bool,
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
        bail!("{} exists: pass --force to overwrite it", ctx.suite_path.display());
    }
    if let Some(parent) = ctx.suite_path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&ctx.suite_path, example()).with_context(|| format!("cannot write {}", ctx.suite_path.display()))?;
    println!("wrote {}", ctx.suite_path.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_parses_to_the_defaults() {
        let suite = perfarena_core::Suite::from_toml_str(&super::example(), "perfarena.toml").unwrap();
        assert_eq!(suite.hash(), perfarena_core::Suite::defaults().hash());
    }
}
