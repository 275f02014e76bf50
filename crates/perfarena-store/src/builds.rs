//! The `builds` table (one row per try of an image build) and the `images` table (where each
//! image is: local engine, registry), both created by migration 2.

use std::collections::HashMap;

use rusqlite::params;

use perfarena_core::VariantKind;

use crate::{Result, Store};

/// One try of an image build, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildTryRow {
    pub task: String,
    pub variant: VariantKind,
    pub image: String,
    /// `success`, `build_failed`… (`perfarena_backend::images::BuildStatus`).
    pub status: String,
    pub try_idx: u32,
    pub max_jobs: Option<u32>,
    pub started_at: String,
    pub duration_s: f64,
    pub log_path: Option<String>,
    pub excerpt: Option<String>,
    /// The build arguments, as a JSON object.
    pub args: serde_json::Value,
    pub digest: Option<String>,
}

/// The last recorded try of an image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LastBuild {
    pub status: String,
    pub excerpt: Option<String>,
    pub log_path: Option<String>,
    pub started_at: String,
    pub try_idx: i64,
    pub max_jobs: Option<i64>,
}

/// Where an image is: `present`, `missing` or `unknown` for each place.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow<'a> {
    pub image: &'a str,
    pub local: &'a str,
    pub registry: &'a str,
    pub digest: Option<&'a str>,
    /// Who found out: `build`, `status`, `import:…`.
    pub source: &'a str,
    pub checked_at: &'a str,
}

impl Store {
    /// Records one try of an image build; returns its row id.
    pub fn insert_build_try(&self, row: &BuildTryRow) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO builds (task, variant, image_ref, status, try_idx, max_jobs, started_at, duration_s, log_path, excerpt, args, digest)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    row.task,
                    row.variant.to_string(),
                    row.image,
                    row.status,
                    row.try_idx,
                    row.max_jobs,
                    row.started_at,
                    row.duration_s,
                    row.log_path,
                    row.excerpt,
                    row.args.to_string(),
                    row.digest,
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The last try of every image that has one, by image.
    pub fn last_builds(&self) -> Result<HashMap<String, LastBuild>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT image_ref, status, excerpt, log_path, started_at, try_idx, max_jobs FROM builds
                 WHERE id IN (SELECT MAX(id) FROM builds GROUP BY image_ref)",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
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
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Candidate images recorded by earlier builds: (task, variant, image), first built first.
    pub fn candidate_builds(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT task, variant, image_ref FROM builds WHERE variant LIKE 'candidate:%'
                 GROUP BY task, variant, image_ref ORDER BY MIN(id)",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Records where an image is; a known digest is kept when the new check has none.
    pub fn upsert_image(&self, row: &ImageRow<'_>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO images (image_ref, local, registry, digest, source, checked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(image_ref) DO UPDATE SET local = excluded.local, registry = excluded.registry,
                 digest = COALESCE(excluded.digest, images.digest), source = excluded.source, checked_at = excluded.checked_at",
                params![row.image, row.local, row.registry, row.digest, row.source, row.checked_at],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn try_row(image: &str, variant: VariantKind, status: &str, try_idx: u32) -> BuildTryRow {
        BuildTryRow {
            task: "abcdef1234567".into(),
            variant,
            image: image.into(),
            status: status.into(),
            try_idx,
            max_jobs: Some(8 >> try_idx),
            started_at: format!("2026-01-01T00:0{try_idx}:00Z"),
            duration_s: 1.5,
            log_path: Some(format!("/builds/{try_idx}.log")),
            excerpt: None,
            args: serde_json::json!({"max_jobs": "8"}),
            digest: None,
        }
    }

    #[test]
    fn the_last_try_of_each_image_and_candidate_builds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cand: VariantKind = "candidate:agent".parse().unwrap();
        store
            .insert_build_try(&try_row("r/x:h", VariantKind::Human, "build_failed", 0))
            .unwrap();
        store
            .insert_build_try(&try_row("r/x:h", VariantKind::Human, "success", 1))
            .unwrap();
        store
            .insert_build_try(&try_row("r/x:c", cand.clone(), "success", 0))
            .unwrap();
        let last = store.last_builds().unwrap();
        assert_eq!(last["r/x:h"].status, "success");
        assert_eq!(last["r/x:h"].try_idx, 1);
        assert_eq!(last["r/x:h"].max_jobs, Some(4));
        assert_eq!(
            store.candidate_builds().unwrap(),
            vec![(
                "abcdef1234567".to_string(),
                cand.to_string(),
                "r/x:c".to_string()
            )]
        );
    }

    #[test]
    fn an_image_check_keeps_a_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let row = |registry, digest| ImageRow {
            image: "r/x:h",
            local: "present",
            registry,
            digest,
            source: "status",
            checked_at: "t",
        };
        store
            .upsert_image(&row("present", Some("sha256:aa")))
            .unwrap();
        store.upsert_image(&row("unknown", None)).unwrap();
        let (registry, digest): (String, Option<String>) = store
            .conn
            .query_row(
                "SELECT registry, digest FROM images WHERE image_ref = 'r/x:h'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(registry, "unknown");
        assert_eq!(digest.as_deref(), Some("sha256:aa"));
    }
}
