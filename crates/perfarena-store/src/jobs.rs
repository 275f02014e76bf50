//! The `jobs` table: backend job ids (Slurm) per attempt, recorded at submission so that
//! `perfarena run --resume` re-attaches to a job instead of submitting it again.

use rusqlite::{OptionalExtension, params};

use perfarena_core::{CommitId, VariantKind};

use crate::{Result, Store};

/// One submitted job of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub run_id: String,
    pub task: CommitId,
    pub variant: VariantKind,
    pub round_idx: u32,
    pub backend: String,
    pub job_id: String,
    pub submitted_at: String,
    /// What the backend last knew (`submitted`, `rerun`, `cancelled`, `ended:COMPLETED`…).
    pub state: String,
}

impl Store {
    /// Records (or replaces) the job of an attempt.
    pub fn put_job(&self, job: &JobRecord) -> Result<()> {
        self.connection()
            .execute(
                "INSERT OR REPLACE INTO jobs (run_id, task, variant, round_idx, backend, job_id, submitted_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![job.run_id, job.task.as_str(), job.variant.to_string(), job.round_idx, job.backend, job.job_id, job.submitted_at, job.state],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The job recorded for an attempt.
    pub fn job(
        &self,
        run_id: &str,
        task: &CommitId,
        variant: &VariantKind,
        round_idx: u32,
    ) -> Result<Option<JobRecord>> {
        let row = self
            .connection()
            .query_row(
                "SELECT backend, job_id, submitted_at, state FROM jobs
                 WHERE run_id = ?1 AND task = ?2 AND variant = ?3 AND round_idx = ?4",
                params![run_id, task.as_str(), variant.to_string(), round_idx],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row.map(|(backend, job_id, submitted_at, state)| JobRecord {
            run_id: run_id.to_string(),
            task: task.clone(),
            variant: variant.clone(),
            round_idx,
            backend,
            job_id,
            submitted_at,
            state,
        }))
    }

    /// Updates the state of an attempt's job.
    pub fn set_job_state(
        &self,
        run_id: &str,
        task: &CommitId,
        variant: &VariantKind,
        round_idx: u32,
        state: &str,
    ) -> Result<()> {
        self.connection()
            .execute(
                "UPDATE jobs SET state = ?5 WHERE run_id = ?1 AND task = ?2 AND variant = ?3 AND round_idx = ?4",
                params![run_id, task.as_str(), variant.to_string(), round_idx, state],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Whether a job may still be re-attached to by `--resume`: recorded as submitted (or
    /// resubmitted) for a run that has not finished.
    pub fn job_reattachable(&self, backend: &str, job_id: &str) -> Result<bool> {
        let found = self
            .connection()
            .query_row(
                "SELECT 1 FROM jobs j LEFT JOIN runs r ON r.run_id = j.run_id
                 WHERE j.backend = ?1 AND j.job_id = ?2 AND j.state IN ('submitted', 'rerun')
                   AND COALESCE(r.status, 'running') != 'finished'",
                params![backend, job_id],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(found.is_some())
    }

    /// The jobs of a run, oldest first.
    pub fn jobs(&self, run_id: &str) -> Result<Vec<JobRecord>> {
        let mut stmt = self
            .connection()
            .prepare(
                "SELECT task, variant, round_idx, backend, job_id, submitted_at, state FROM jobs
                 WHERE run_id = ?1 ORDER BY submitted_at, rowid",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut jobs = Vec::new();
        for row in rows {
            let (task, variant, round_idx, backend, job_id, submitted_at, state) =
                row.map_err(|e| self.err(e))?;
            let task = CommitId::parse(&task)
                .map_err(|e| self.corrupt(format!("jobs.task {task}"), e.to_string()))?;
            let variant: VariantKind = variant.parse().map_err(|e: perfarena_core::IdError| {
                self.corrupt(format!("jobs.variant {variant}"), e.to_string())
            })?;
            jobs.push(JobRecord {
                run_id: run_id.to_string(),
                task,
                variant,
                round_idx,
                backend,
                job_id,
                submitted_at,
                state,
            });
        }
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let task = CommitId::parse("abcdef1234567").unwrap();
        let mut job = JobRecord {
            run_id: "r1".into(),
            task: task.clone(),
            variant: VariantKind::Human,
            round_idx: 2,
            backend: "slurm".into(),
            job_id: "17".into(),
            submitted_at: "2026-01-01T00:00:00Z".into(),
            state: "submitted".into(),
        };
        store.put_job(&job).unwrap();
        assert_eq!(
            store
                .job("r1", &task, &VariantKind::Human, 2)
                .unwrap()
                .unwrap(),
            job
        );
        assert!(
            store
                .job("r1", &task, &VariantKind::Baseline, 2)
                .unwrap()
                .is_none()
        );
        store
            .set_job_state("r1", &task, &VariantKind::Human, 2, "ended:COMPLETED")
            .unwrap();
        assert_eq!(
            store
                .job("r1", &task, &VariantKind::Human, 2)
                .unwrap()
                .unwrap()
                .state,
            "ended:COMPLETED"
        );
        job.job_id = "18".into();
        job.state = "rerun".into();
        store.put_job(&job).unwrap();
        let jobs = store.jobs("r1").unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            (jobs[0].job_id.as_str(), jobs[0].state.as_str()),
            ("18", "rerun")
        );
        assert!(store.job_reattachable("slurm", "18").unwrap());
        assert!(!store.job_reattachable("slurm", "17").unwrap());
        store
            .set_job_state("r1", &task, &VariantKind::Human, 2, "cancelled")
            .unwrap();
        assert!(!store.job_reattachable("slurm", "18").unwrap());
    }
}
