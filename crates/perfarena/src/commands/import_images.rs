//! `perfarena images import`: what registry repositories hold, from files (the registry API's
//! `tags/list` answer, or a plain list of refs), into the store's `images` table, so that
//! `images status` and `analyze` know image availability without a live registry.

use std::process::ExitCode;

use anyhow::Result;

use perfarena_core::availability::{ImageIndex, RepositoryListing, read_listing};
use perfarena_store::Store;

use crate::context::{Ctx, now};

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Listing files: `{"name": "org/repo", "tags": [...]}` (or an array of those), or one image
    /// ref per line.
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// The registry host the `tags/list` names belong to (the API leaves it out), e.g. `ghcr.io`.
    #[arg(long)]
    pub registry: Option<String>,
    /// Name of where the lists come from (default: the file's name); recorded as `import:<name>`.
    #[arg(long)]
    pub source: Option<String>,
    /// The files list only some of each repository's tags: record what they name as present,
    /// and conclude nothing about the rest.
    #[arg(long)]
    pub partial: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Imports the listing files into the store.
pub fn run(ctx: &Ctx, args: &ImportArgs) -> Result<ExitCode> {
    let _lock = ctx.lock_store()?;
    let mut store = ctx.store()?;
    let stamp = now();
    let mut report = Vec::new();
    for file in &args.files {
        let text = super::input_files::read_text(file)?;
        let listings: Vec<RepositoryListing> =
            read_listing(&file.display().to_string(), &text, args.registry.as_deref())?;
        let name = match &args.source {
            Some(source) => source.clone(),
            None => file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.display().to_string()),
        };
        let source = format!("import:{name}");
        let counts = store.import_listings(&listings, !args.partial, &source, &stamp)?;
        let n_refs: usize = listings.iter().map(|l| l.tags.len()).sum();
        if !args.json {
            println!(
                "{}: {} repositor{} with {n_refs} image(s): {} new, {} changed, {} unchanged{}",
                file.display(),
                listings.len(),
                if listings.len() == 1 { "y" } else { "ies" },
                counts.added,
                counts.changed,
                counts.unchanged,
                if args.partial {
                    " (partial: other tags stay unknown)"
                } else {
                    ""
                }
            );
        }
        report.push(serde_json::json!({
            "file": file.display().to_string(),
            "source": source,
            "repositories": listings.iter().map(|l| serde_json::json!({"repository": l.repository, "tags": l.tags.len()})).collect::<Vec<_>>(),
            "added": counts.added,
            "changed": counts.changed,
            "unchanged": counts.unchanged,
            "complete": !args.partial,
        }));
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "imports": report }))?
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What the store records about images (imported listings, earlier checks), for answering
/// without a live registry; with the sources it came from.
pub fn recorded_index(store: &Store) -> Result<(ImageIndex, Vec<String>)> {
    let index = ImageIndex::new(&store.image_availability()?, &store.image_listings()?);
    let mut sources: Vec<String> = index.sources().into_iter().collect();
    if sources.is_empty() {
        sources.push("nothing (run `perfarena images import FILE` first)".into());
    }
    Ok((index, sources))
}
