//! The store side of images: one `builds` row per try, the `images` table of availability
//! (both created by migration 2). Through `Store::connection`, as the store intends for edges
//! that own their tables.

use std::collections::HashMap;
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use rusqlite::params;

use perfarena_backend::images::builder::TryRecord;
use perfarena_core::VariantKind;
use perfarena_store::Store;

/// RFC 3339, UTC, seconds.
pub fn timestamp(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Records one try; returns its row id.
pub fn insert_try(
    store: &Store,
    task: &str,
    variant: &VariantKind,
    image: &str,
    record: &TryRecord,
) -> Result<i64> {
    let conn = store.connection();
    conn.execute(
        "INSERT INTO builds (task, variant, image_ref, status, try_idx, max_jobs, started_at, duration_s, log_path, excerpt, args, digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            task,
            variant.to_string(),
            image,
            record.status.as_str(),
            record.try_idx,
            record.max_jobs,
            timestamp(record.started_at),
            record.duration_s,
            record.log_path.as_ref().map(|p| p.display().to_string()),
            record.excerpt,
            serde_json::to_string(&record.args).unwrap_or_else(|_| "{}".into()),
            record.digest,
        ],
    )
    .context("cannot record the build in the store")?;
    Ok(conn.last_insert_rowid())
}

/// The last recorded try of an image.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastBuild {
    pub status: String,
    pub excerpt: Option<String>,
    pub log_path: Option<String>,
    pub started_at: String,
    pub try_idx: i64,
    pub max_jobs: Option<i64>,
}

/// The last try of every image that has one.
pub fn last_builds(store: &Store) -> Result<HashMap<String, LastBuild>> {
    let conn = store.connection();
    let mut stmt = conn.prepare(
        "SELECT image_ref, status, excerpt, log_path, started_at, try_idx, max_jobs FROM builds
         WHERE id IN (SELECT MAX(id) FROM builds GROUP BY image_ref)",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            LastBuild {
                status: r.get(1)?,
                excerpt: r.get(2)?,
                log_path: r.get(3)?,
                started_at: r.get(4)?,
                try_idx: r.get(5)?,
                max_jobs: r.get(6)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Candidate images recorded by earlier builds: (task, variant, image).
pub fn candidate_builds(store: &Store) -> Result<Vec<(String, String, String)>> {
    let conn = store.connection();
    let mut stmt = conn.prepare(
        "SELECT task, variant, image_ref FROM builds WHERE variant LIKE 'candidate:%' GROUP BY task, variant, image_ref ORDER BY MIN(id)",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records where an image is (`present`, `missing` or `unknown` for each place).
pub fn upsert_image(
    store: &Store,
    image: &str,
    local: &str,
    registry: &str,
    digest: Option<&str>,
    source: &str,
    checked_at: &str,
) -> Result<()> {
    store
        .connection()
        .execute(
            "INSERT INTO images (image_ref, local, registry, digest, source, checked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(image_ref) DO UPDATE SET local = excluded.local, registry = excluded.registry,
             digest = COALESCE(excluded.digest, images.digest), source = excluded.source, checked_at = excluded.checked_at",
            params![image, local, registry, digest, source, checked_at],
        )
        .context("cannot record the image in the store")?;
    Ok(())
}
