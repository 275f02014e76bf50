//! `perfarena parse` (placeholder until the parser work lands; replaced by its owner).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ParseArgs {
    /// Log files.
    files: Vec<std::path::PathBuf>,
}

pub fn run(_args: &ParseArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not available yet")
}
