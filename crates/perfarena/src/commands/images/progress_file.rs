//! `--progress-json FILE`: the live state of every planned image, rewritten (atomically: a
//! temporary file renamed over it) whenever an image starts, retries or finishes, so another
//! process can watch a long build.

use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

use perfarena_backend::images::plan::ImageJob;

pub const PROGRESS_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct ImageProgress {
    pub image: String,
    pub task: String,
    pub variant: String,
    pub commit: String,
    /// `pending`, `building`, `done` or `interrupted`.
    pub state: String,
    pub status: Option<String>,
    pub try_idx: Option<u32>,
    pub max_jobs: Option<u32>,
    pub tries: u32,
    pub duration_s: Option<f64>,
    pub excerpt: Option<String>,
    pub log: Option<String>,
}

#[derive(Debug, Serialize)]
struct Document<'a> {
    version: u32,
    /// `running`, `finished`, `interrupted` or `failed`.
    state: &'a str,
    updated_at: String,
    images: &'a [ImageProgress],
}

pub struct ProgressFile {
    path: Option<PathBuf>,
    inner: Mutex<(String, Vec<ImageProgress>)>,
}

impl ProgressFile {
    pub fn new(path: Option<PathBuf>, jobs: &[ImageJob]) -> ProgressFile {
        let images = jobs
            .iter()
            .map(|job| ImageProgress {
                image: job.image.clone(),
                task: job.task.to_string(),
                variant: job.variant.to_string(),
                commit: job.commit.to_string(),
                state: "pending".into(),
                status: None,
                try_idx: None,
                max_jobs: job.max_jobs,
                tries: 0,
                duration_s: None,
                excerpt: None,
                log: None,
            })
            .collect();
        let file = ProgressFile {
            path,
            inner: Mutex::new(("running".into(), images)),
        };
        file.write();
        file
    }

    /// Changes one image's entry and rewrites the file.
    pub fn update(&self, image: &str, change: impl FnOnce(&mut ImageProgress)) {
        if let Ok(mut inner) = self.inner.lock()
            && let Some(entry) = inner.1.iter_mut().find(|e| e.image == image)
        {
            change(entry);
        }
        self.write();
    }

    /// The command's end: images still building become `interrupted`.
    pub fn finish(&self, state: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.0 = state.to_string();
            for entry in inner.1.iter_mut().filter(|e| e.state == "building") {
                entry.state = "interrupted".into();
            }
        }
        self.write();
    }

    fn write(&self) {
        let Some(path) = &self.path else { return };
        let Ok(inner) = self.inner.lock() else { return };
        let doc = Document {
            version: PROGRESS_VERSION,
            state: &inner.0,
            updated_at: crate::context::now(),
            images: &inner.1,
        };
        let Ok(text) = serde_json::to_string_pretty(&doc) else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, text + "\n").is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}
