//! The store side of bringing existing work in: image availability rows and complete registry
//! listings (`images import`), soft-judge labels (`judge import`) and imported attempts
//! (`results import`, idempotent through their import keys).

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, params};

use perfarena_core::attempt::AttemptRecord;
use perfarena_core::availability::{ImageAvailability, ImageListing, Presence, RepositoryListing};
use perfarena_core::categorize::{HardOutcome, JudgeLabel, parse_soft_label};
use perfarena_core::{CandidateName, CommitId};

use crate::{Result, Store, StoreError};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
}

impl Store {
    fn sql_err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| self.err(e)
    }

    /// Renames tasks known by a short hash to their full hash, with everything recorded under
    /// the short one (attempts, builds, jobs, judge labels), in one transaction: the same
    /// commit is one task (`tasks import` found it in full). `upgrades` are `(short, full)`.
    pub fn upgrade_task_commits(&mut self, upgrades: &[(CommitId, CommitId)]) -> Result<()> {
        if upgrades.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
            path: Store::db_path(&self.dir).display().to_string(),
            source: e,
        })?;
        for (short, full) in upgrades {
            let (short, full) = (short.as_str(), full.as_str());
            let statements = [
                "UPDATE tasks SET commit_hash = ?2, data = json_set(data, '$.commit', ?2) WHERE commit_hash = ?1",
                "UPDATE attempts SET task = ?2 WHERE task = ?1",
                "UPDATE builds SET task = ?2 WHERE task = ?1",
                "UPDATE jobs SET task = ?2 WHERE task = ?1",
                "UPDATE OR REPLACE judge_labels SET task = ?2 WHERE task = ?1",
            ];
            for statement in statements {
                tx.execute(statement, params![short, full])
                    .map_err(|e| StoreError::Sqlite {
                        path: Store::db_path(&self.dir).display().to_string(),
                        source: e,
                    })?;
            }
        }
        tx.commit().map_err(|e| StoreError::Sqlite {
            path: Store::db_path(&self.dir).display().to_string(),
            source: e,
        })
    }

    /// Every row of the `images` table.
    pub fn image_availability(&self) -> Result<Vec<ImageAvailability>> {
        let mut stmt = self
            .conn
            .prepare("SELECT image_ref, local, registry, digest, source, checked_at FROM images ORDER BY image_ref")
            .map_err(self.sql_err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ImageAvailability {
                    image_ref: r.get(0)?,
                    local: Presence::from_column(&r.get::<_, String>(1)?),
                    registry: Presence::from_column(&r.get::<_, String>(2)?),
                    digest: r.get(3)?,
                    source: r.get(4)?,
                    checked_at: r.get(5)?,
                })
            })
            .map_err(self.sql_err())?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.sql_err())
    }

    /// The repositories listed completely by `images import`.
    pub fn image_listings(&self) -> Result<Vec<ImageListing>> {
        let mut stmt = self
            .conn
            .prepare("SELECT repository, source, listed_at, n_tags FROM image_listings ORDER BY repository")
            .map_err(self.sql_err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ImageListing {
                    repository: r.get(0)?,
                    source: r.get(1)?,
                    listed_at: r.get(2)?,
                    n_tags: r.get::<_, i64>(3)? as usize,
                })
            })
            .map_err(self.sql_err())?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(self.sql_err())
    }

    /// Records what registry repositories hold, in one transaction: every listed ref is present in
    /// the registry (what the local engine has is left as it was). With `complete`, each listing
    /// is the whole repository: refs of it recorded earlier that it lacks become missing, and
    /// the repository is remembered so that refs never seen are missing too.
    pub fn import_listings(
        &mut self,
        listings: &[RepositoryListing],
        complete: bool,
        source: &str,
        now: &str,
    ) -> Result<ImportCounts> {
        let path = Self::db_path(&self.dir).display().to_string();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let mut counts = ImportCounts::default();
        for listing in listings {
            let listed: BTreeSet<String> = listing.refs().collect();
            for image in &listed {
                let before: Option<String> = tx
                    .query_row(
                        "SELECT registry FROM images WHERE image_ref = ?1",
                        [image],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sql)?;
                match before.as_deref() {
                    Some("present") => counts.unchanged += 1,
                    Some(_) => counts.changed += 1,
                    None => counts.added += 1,
                }
                tx.execute(
                    "INSERT INTO images (image_ref, local, registry, source, checked_at) VALUES (?1, 'unknown', 'present', ?2, ?3)
                     ON CONFLICT(image_ref) DO UPDATE SET registry = 'present', source = excluded.source, checked_at = excluded.checked_at
                     WHERE images.registry <> 'present'",
                    params![image, source, now],
                )
                .map_err(sql)?;
            }
            if !complete {
                continue;
            }
            let prefix = format!("{}:", listing.repository);
            let digest_prefix = format!("{}@", listing.repository);
            let earlier: Vec<String> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT image_ref FROM images WHERE registry = 'present'
                         AND (substr(image_ref, 1, length(?1)) = ?1 OR substr(image_ref, 1, length(?2)) = ?2)",
                    )
                    .map_err(sql)?;
                let rows = stmt
                    .query_map(params![prefix, digest_prefix], |r| r.get(0))
                    .map_err(sql)?;
                rows.collect::<rusqlite::Result<_>>().map_err(sql)?
            };
            for gone in earlier.iter().filter(|image| !listed.contains(*image)) {
                tx.execute(
                    "UPDATE images SET registry = 'missing', source = ?2, checked_at = ?3 WHERE image_ref = ?1",
                    params![gone, source, now],
                )
                .map_err(sql)?;
                counts.changed += 1;
            }
            tx.execute(
                "INSERT INTO image_listings (repository, source, listed_at, n_tags) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(repository) DO UPDATE SET source = excluded.source, listed_at = excluded.listed_at, n_tags = excluded.n_tags",
                params![listing.repository, source, now, listing.tags.len() as i64],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(counts)
    }

    /// Every soft-judge row.
    pub fn judge_labels(&self) -> Result<Vec<JudgeLabel>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT task, candidate, label, source, hard, approach FROM judge_labels ORDER BY task, candidate",
            )
            .map_err(self.sql_err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let (task, candidate, label, source, hard, approach) = row.map_err(self.sql_err())?;
            let what = format!("judge_labels/{task}/{candidate}");
            let corrupt = |e: String| self.corrupt(what.clone(), e);
            out.push(JudgeLabel {
                task: CommitId::parse(&task).map_err(|e| corrupt(e.to_string()))?,
                candidate: CandidateName::parse(&candidate).map_err(|e| corrupt(e.to_string()))?,
                label: parse_soft_label(&label).map_err(|e| corrupt(e.to_string()))?,
                hard: hard
                    .map(|h| h.parse::<HardOutcome>())
                    .transpose()
                    .map_err(|e| corrupt(e.to_string()))?,
                approach,
                source,
            });
        }
        Ok(out)
    }

    /// Inserts or updates judge rows (one per task × candidate), in one transaction. A row
    /// that leaves the label or the hard outcome out keeps what was stored for it (a file of
    /// hard outcomes does not erase the labels of another).
    pub fn upsert_judge_labels(&mut self, labels: &[JudgeLabel]) -> Result<ImportCounts> {
        let path = Self::db_path(&self.dir).display().to_string();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let mut counts = ImportCounts::default();
        for judged in labels {
            let before: Option<(String, Option<String>, Option<String>)> = tx
                .query_row(
                    "SELECT label, hard, approach FROM judge_labels WHERE task = ?1 AND candidate = ?2",
                    params![judged.task.as_str(), judged.candidate.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(sql)?;
            let label = judged
                .label
                .map(|l| l.as_str().to_string())
                .or_else(|| before.as_ref().map(|b| b.0.clone()))
                .unwrap_or_else(|| "unknown".to_string());
            let hard = judged
                .hard
                .map(|h| h.as_str().to_string())
                .or_else(|| before.as_ref().and_then(|b| b.1.clone()));
            let approach = judged
                .approach
                .clone()
                .or_else(|| before.as_ref().and_then(|b| b.2.clone()));
            match &before {
                Some(old) if old == &(label.clone(), hard.clone(), approach.clone()) => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.changed += 1,
                None => counts.added += 1,
            }
            tx.execute(
                "INSERT INTO judge_labels (task, candidate, label, source, hard, approach) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(task, candidate) DO UPDATE SET label = excluded.label, source = excluded.source,
                 hard = excluded.hard, approach = excluded.approach",
                params![judged.task.as_str(), judged.candidate.as_str(), label, judged.source, hard, approach],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(counts)
    }

    /// Adds imported attempts; one whose import key is already stored is left out (importing
    /// the same file twice changes nothing). Each attempt is written with its samples in its
    /// own transaction, like measured ones.
    pub fn insert_imported_attempts(&mut self, attempts: &[AttemptRecord]) -> Result<ImportCounts> {
        let mut counts = ImportCounts::default();
        for attempt in attempts {
            if let Some(key) = &attempt.import_key
                && self.has_import_key(key)?
            {
                counts.unchanged += 1;
                continue;
            }
            self.insert_attempt(attempt)?;
            counts.added += 1;
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfarena_core::categorize::SoftLabel;

    fn listing(repository: &str, tags: &[&str]) -> RepositoryListing {
        RepositoryListing {
            repository: repository.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn listings_mark_present_then_missing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let counts = store
            .import_listings(&[listing("org/b", &["1", "2"])], true, "import:a", "t1")
            .unwrap();
        assert_eq!(
            counts,
            ImportCounts {
                added: 2,
                changed: 0,
                unchanged: 0
            }
        );
        let again = store
            .import_listings(&[listing("org/b", &["1", "2"])], true, "import:a", "t1")
            .unwrap();
        assert_eq!(
            again,
            ImportCounts {
                added: 0,
                changed: 0,
                unchanged: 2
            }
        );
        let shrunk = store
            .import_listings(&[listing("org/b", &["1"])], true, "import:b", "t2")
            .unwrap();
        assert_eq!(
            shrunk,
            ImportCounts {
                added: 0,
                changed: 1,
                unchanged: 1
            }
        );
        let rows = store.image_availability().unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.image_ref.as_str(), r.registry))
                .collect::<Vec<_>>(),
            [
                ("org/b:1", Presence::Present),
                ("org/b:2", Presence::Missing)
            ]
        );
        assert_eq!(store.image_listings().unwrap()[0].n_tags, 1);
        store
            .import_listings(&[listing("org/c", &["9"])], false, "import:c", "t3")
            .unwrap();
        assert_eq!(
            store.image_listings().unwrap().len(),
            1,
            "a partial list is no listing"
        );
    }

    #[test]
    fn labels_upsert() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let label = |l: SoftLabel| JudgeLabel {
            task: CommitId::parse(&"a".repeat(40)).unwrap(),
            candidate: CandidateName::parse("agent").unwrap(),
            label: Some(l),
            hard: None,
            approach: None,
            source: "j".into(),
        };
        assert_eq!(
            store
                .upsert_judge_labels(&[label(SoftLabel::Same)])
                .unwrap()
                .added,
            1
        );
        assert_eq!(
            store
                .upsert_judge_labels(&[label(SoftLabel::Same)])
                .unwrap()
                .unchanged,
            1
        );
        assert_eq!(
            store
                .upsert_judge_labels(&[label(SoftLabel::Different)])
                .unwrap()
                .changed,
            1
        );
        assert_eq!(
            store.judge_labels().unwrap(),
            vec![label(SoftLabel::Different)]
        );
    }
}
