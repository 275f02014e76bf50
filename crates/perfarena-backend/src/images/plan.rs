//! Planning builds: for each selected task, which images (human from the commit, baseline from
//! the parent, one per candidate patch on top of the baseline), with which recipe, in which
//! order. Pure: no I/O, so `--dry-run` prints exactly what a build would do.
//!
//! Order: every human image first, then baselines (a baseline is built only when its task's
//! human image exists: alone it compares nothing), then candidates (built FROM their baseline).
//! A baseline shared by several tasks (same parent) is planned once.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use perfarena_core::images::image_ref;
use perfarena_core::patch::{matching, patch_paths, sha256_hex};
use perfarena_core::suite::Suite;
use perfarena_core::{CandidateName, CommitId, Task, VariantKind};

use super::ImagesError;

/// Which variants to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VariantFilter {
    #[default]
    All,
    Baseline,
    Human,
    Candidates,
}

impl VariantFilter {
    fn wants(self, variant: &VariantKind) -> bool {
        matches!(
            (self, variant),
            (VariantFilter::All, _)
                | (VariantFilter::Baseline, VariantKind::Baseline)
                | (VariantFilter::Human, VariantKind::Human)
                | (VariantFilter::Candidates, VariantKind::Candidate(_))
        )
    }
}

/// A candidate patch of one task.
#[derive(Debug, Clone)]
pub struct CandidatePatch {
    pub task: CommitId,
    pub name: CandidateName,
    pub sha256: String,
    pub text: String,
}

impl CandidatePatch {
    pub fn new(task: CommitId, name: CandidateName, text: String) -> CandidatePatch {
        CandidatePatch {
            task,
            name,
            sha256: sha256_hex(&text),
            text,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub variants: VariantFilter,
    /// `--max-jobs`: the first try's max_jobs, over the suite and its overrides.
    pub max_jobs: Option<u32>,
    /// The Dockerfile of commits whose era (`[[bench.eras]]` with `dockerfile`) differs from
    /// `build.dockerfile`; resolved with git by the caller.
    pub dockerfiles: BTreeMap<CommitId, String>,
    /// Build arguments the eras (`[[bench.eras]]` with `build_args`) set for a commit's images,
    /// over `build.args` and under the commit's `[build.overrides]`.
    pub era_args: BTreeMap<CommitId, BTreeMap<String, String>>,
}

/// How an image is made.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recipe {
    /// `docker build` of the repository exported at `commit`.
    Full {
        /// The Dockerfile: a path in the repository at the commit (or, when absent there, next
        /// to the suite file).
        dockerfile: String,
        /// The context holds a `.git` of the commit (`build.context_git`). Left out of the
        /// recipe hash when false, so that images built before the setting keep theirs.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        context_git: bool,
    },
    /// The baseline image plus the patch: one thin layer, or the rebuild step too.
    Candidate {
        base_image: String,
        patch_sha256: String,
        #[serde(skip)]
        patch_text: String,
        /// The patched files that match `build.rebuild_globs` (empty: thin layer).
        rebuild_paths: Vec<String>,
        rebuild_command: String,
        source_dir: String,
    },
}

/// One image to produce.
#[derive(Debug, Clone, Serialize)]
pub struct ImageJob {
    pub image: String,
    /// The task the image is for (the first one, when several share a baseline).
    pub task: CommitId,
    /// Other tasks sharing this image (same parent).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<CommitId>,
    pub variant: VariantKind,
    /// The commit whose source is in the image (the parent for baselines and candidates).
    pub commit: CommitId,
    /// The task's parent.
    pub parent: Option<CommitId>,
    pub recipe: Recipe,
    /// Build args, `max_jobs` excluded (the ladder sets it per try).
    pub args: BTreeMap<String, String>,
    /// max_jobs of the first try; `None`: the recipe sets no max_jobs (no ladder).
    pub max_jobs: Option<u32>,
    /// A shell step run on the exported source before the build (a per-commit override).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_build_patch: Option<String>,
    /// Skip with this reason (a per-commit override).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permanently_failed: Option<String>,
    /// The human image this baseline waits for (baselines only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_human: Option<String>,
    /// A hash of everything that decides the image's content besides the source.
    pub recipe_hash: String,
    pub labels: BTreeMap<String, String>,
}

impl ImageJob {
    /// The build args of one try.
    pub fn args_with_max_jobs(&self, max_jobs: Option<u32>) -> BTreeMap<String, String> {
        let mut args = self.args.clone();
        if let Some(jobs) = max_jobs {
            args.insert("max_jobs".into(), jobs.to_string());
        }
        args
    }

    pub fn is_candidate(&self) -> bool {
        matches!(self.recipe, Recipe::Candidate { .. })
    }
}

/// Label keys on every image perfarena builds. Not `perfarena.run`: containers inherit image
/// labels, and that one marks containers of a run.
pub mod labels {
    pub const TASK: &str = "perfarena.image.task";
    pub const VARIANT: &str = "perfarena.image.variant";
    pub const COMMIT: &str = "perfarena.image.commit";
    pub const PARENT: &str = "perfarena.image.parent";
    pub const PATCH_SHA256: &str = "perfarena.image.patch_sha256";
    pub const RECIPE: &str = "perfarena.image.recipe";
}

/// The settings of one image's build: the suite's args, then the override of the commit built.
struct Settings {
    args: BTreeMap<String, String>,
    max_jobs: Option<u32>,
    pre_build_patch: Option<String>,
    permanently_failed: Option<String>,
}

fn settings(suite: &Suite, commit: &CommitId, options: &PlanOptions) -> Settings {
    let mut args = suite.build.args.clone();
    if let Some(era_args) = options.era_args.get(commit) {
        args.extend(era_args.clone());
    }
    let over = suite.build_override(commit.as_str());
    if let Some(over) = over {
        args.extend(over.args.clone());
    }
    let from_args = args
        .remove("max_jobs")
        .and_then(|v| v.trim().parse::<u32>().ok());
    let max_jobs = options
        .max_jobs
        .or(over.and_then(|o| o.max_jobs))
        .or(from_args)
        .map(|j| j.max(1));
    Settings {
        args,
        max_jobs,
        pre_build_patch: over
            .and_then(|o| o.pre_build_patch.clone())
            .filter(|p| !p.trim().is_empty()),
        permanently_failed: over.and_then(|o| o.permanently_failed.clone()),
    }
}

fn recipe_hash(
    recipe: &Recipe,
    args: &BTreeMap<String, String>,
    pre_build_patch: Option<&str>,
) -> String {
    let canonical =
        serde_json::json!({ "recipe": recipe, "args": args, "pre_build_patch": pre_build_patch });
    sha256_hex(&canonical.to_string())
}

fn bad_ref(task: &Task, err: impl std::fmt::Display) -> ImagesError {
    ImagesError::Other(format!("task {}: image name: {err}", task.short_id()))
}

/// Plans the images of `tasks` (parents resolved) and their `candidates`.
pub fn plan(
    suite: &Suite,
    tasks: &[Task],
    candidates: &[CandidatePatch],
    options: &PlanOptions,
) -> Result<Vec<ImageJob>, ImagesError> {
    let mut humans = Vec::new();
    let mut baselines: Vec<ImageJob> = Vec::new();
    let mut cands = Vec::new();
    let mut seen = BTreeSet::new();
    for task in tasks {
        let parent = task.parent.clone().ok_or_else(|| {
            ImagesError::Other(format!(
                "task {}: no parent commit: import tasks with the repository set (repo.path)",
                task.short_id()
            ))
        })?;
        let human_ref = image_ref(&suite.images, task, &VariantKind::Human, None)
            .map_err(|e| bad_ref(task, e))?;
        let baseline_ref = image_ref(&suite.images, task, &VariantKind::Baseline, None)
            .map_err(|e| bad_ref(task, e))?;
        let dockerfile = suite.build.dockerfile.clone();
        let full = |variant: VariantKind, image: String, commit: CommitId| {
            let s = settings(suite, &commit, options);
            let dockerfile = options
                .dockerfiles
                .get(&commit)
                .unwrap_or(&dockerfile)
                .clone();
            let recipe = Recipe::Full {
                dockerfile,
                context_git: suite.build.context_git,
            };
            let hash = recipe_hash(&recipe, &s.args, s.pre_build_patch.as_deref());
            ImageJob {
                labels: job_labels(task, &variant, &commit, None, &hash),
                image,
                task: task.commit.clone(),
                shared_with: Vec::new(),
                variant,
                commit,
                parent: task.parent.clone(),
                recipe,
                args: s.args,
                max_jobs: s.max_jobs,
                pre_build_patch: s.pre_build_patch,
                permanently_failed: s.permanently_failed,
                requires_human: None,
                recipe_hash: hash,
            }
        };
        if options.variants.wants(&VariantKind::Human) && seen.insert(human_ref.clone()) {
            humans.push(full(
                VariantKind::Human,
                human_ref.clone(),
                task.commit.clone(),
            ));
        }
        if options.variants.wants(&VariantKind::Baseline) {
            if seen.insert(baseline_ref.clone()) {
                let mut job = full(VariantKind::Baseline, baseline_ref.clone(), parent.clone());
                job.requires_human = Some(human_ref.clone());
                baselines.push(job);
            } else if let Some(shared) = baselines.iter_mut().find(|j| j.image == baseline_ref) {
                shared.shared_with.push(task.commit.clone());
            }
        }
        for cand in candidates.iter().filter(|c| c.task == task.commit) {
            let variant = VariantKind::Candidate(cand.name.clone());
            if !options.variants.wants(&variant) {
                continue;
            }
            let image = image_ref(&suite.images, task, &variant, Some(&cand.sha256))
                .map_err(|e| bad_ref(task, e))?;
            if !seen.insert(image.clone()) {
                continue;
            }
            // The candidate reruns the baseline's steps only where needed: its args are the
            // baseline's (the parent's override), and the baseline's pre_build_patch is replayed
            // on the exported files so the patch meets the source as it is in the image.
            let s = settings(suite, &parent, options);
            let rebuild_paths = matching(&patch_paths(&cand.text), &suite.build.rebuild_globs)
                .map_err(|e| ImagesError::Other(format!("build.rebuild_globs: {e}")))?;
            let recipe = Recipe::Candidate {
                base_image: baseline_ref.clone(),
                patch_sha256: cand.sha256.clone(),
                patch_text: cand.text.clone(),
                rebuild_command: suite.build.rebuild_command.clone(),
                source_dir: suite.repo.source_dir.clone(),
                rebuild_paths,
            };
            let hash = recipe_hash(&recipe, &s.args, s.pre_build_patch.as_deref());
            cands.push(ImageJob {
                labels: job_labels(task, &variant, &parent, Some(&cand.sha256), &hash),
                image,
                task: task.commit.clone(),
                shared_with: Vec::new(),
                variant,
                commit: parent.clone(),
                parent: Some(parent.clone()),
                recipe,
                args: s.args,
                max_jobs: s.max_jobs,
                pre_build_patch: s.pre_build_patch,
                permanently_failed: s
                    .permanently_failed
                    .map(|reason| format!("its baseline is permanently failed: {reason}")),
                requires_human: None,
                recipe_hash: hash,
            });
        }
    }
    humans.extend(baselines);
    humans.extend(cands);
    Ok(humans)
}

fn job_labels(
    task: &Task,
    variant: &VariantKind,
    commit: &CommitId,
    patch_sha: Option<&str>,
    recipe_hash: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert(labels::TASK.to_string(), task.commit.to_string());
    out.insert(labels::VARIANT.to_string(), variant.to_string());
    out.insert(labels::COMMIT.to_string(), commit.to_string());
    if let Some(parent) = &task.parent {
        out.insert(labels::PARENT.to_string(), parent.to_string());
    }
    if let Some(sha) = patch_sha {
        out.insert(labels::PATCH_SHA256.to_string(), sha.to_string());
    }
    out.insert(labels::RECIPE.to_string(), recipe_hash.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "1111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222";
    const P: &str = "0000000000000000000000000000000000000000";

    fn task(commit: &str, parent: &str) -> Task {
        let mut task = Task::new(CommitId::parse(commit).unwrap());
        task.parent = Some(CommitId::parse(parent).unwrap());
        task
    }

    fn suite(extra: &str) -> Suite {
        let text = format!(
            "[images]\nregistry = \"reg:5000\"\nrepo = \"toy\"\n[build]\nrebuild_globs = [\"csrc/**\"]\nrebuild_command = \"make\"\n[build.args]\nmax_jobs = \"8\"\nnvcc_threads = \"2\"\n{extra}"
        );
        Suite::from_toml_str(&text, "s.toml").unwrap()
    }

    const PY_PATCH: &str =
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+y\n";
    const C_PATCH: &str = "diff --git a/csrc/k.cu b/csrc/k.cu\n--- a/csrc/k.cu\n+++ b/csrc/k.cu\n@@ -1 +1 @@\n-x\n+y\n";

    #[test]
    fn humans_then_baselines_then_candidates_with_shared_parents_once() {
        let tasks = [task(C1, P), task(C2, P)];
        let cands = [
            CandidatePatch::new(
                tasks[0].commit.clone(),
                CandidateName::parse("py").unwrap(),
                PY_PATCH.into(),
            ),
            CandidatePatch::new(
                tasks[0].commit.clone(),
                CandidateName::parse("cu").unwrap(),
                C_PATCH.into(),
            ),
        ];
        let jobs = plan(&suite(""), &tasks, &cands, &PlanOptions::default()).unwrap();
        let names: Vec<(String, &str)> = jobs
            .iter()
            .map(|j| (j.variant.to_string(), j.image.as_str()))
            .collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(
            names[0],
            (
                "human".into(),
                "reg:5000/toy:1111111111111111111111111111111111111111"
            )
        );
        assert_eq!(
            names[2],
            ("baseline".into(), "reg:5000/toy:baseline-000000000000")
        );
        assert_eq!(jobs[2].shared_with, vec![tasks[1].commit.clone()]);
        assert_eq!(
            jobs[2].requires_human.as_deref(),
            Some("reg:5000/toy:1111111111111111111111111111111111111111")
        );
        assert_eq!(jobs[0].max_jobs, Some(8));
        assert!(!jobs[0].args.contains_key("max_jobs"));
        match (&jobs[3].recipe, &jobs[4].recipe) {
            (
                Recipe::Candidate {
                    rebuild_paths: py,
                    base_image,
                    ..
                },
                Recipe::Candidate {
                    rebuild_paths: cu, ..
                },
            ) => {
                assert!(py.is_empty());
                assert_eq!(cu, &vec!["csrc/k.cu".to_string()]);
                assert_eq!(base_image, "reg:5000/toy:baseline-000000000000");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(jobs[3].labels[labels::PATCH_SHA256], sha256_hex(PY_PATCH));
        assert_eq!(jobs[3].labels[labels::COMMIT], P);
    }

    #[test]
    fn overrides_follow_the_commit_built() {
        let extra = format!(
            "[build.overrides.\"{}\"]\nmax_jobs = 2\npre_build_patch = \"sed -i s/a/b/ x\"\nargs = {{ nvcc_threads = \"1\" }}\n[build.overrides.\"{}\"]\npermanently_failed = \"needs cuda 11\"\n",
            &P[..8],
            &C2[..8]
        );
        let tasks = [task(C1, P), task(C2, C1)];
        let jobs = plan(&suite(&extra), &tasks, &[], &PlanOptions::default()).unwrap();
        let baseline_p = jobs
            .iter()
            .find(|j| j.image.ends_with("baseline-000000000000"))
            .unwrap();
        assert_eq!(baseline_p.max_jobs, Some(2));
        assert_eq!(baseline_p.args["nvcc_threads"], "1");
        assert!(baseline_p.pre_build_patch.is_some());
        let human_2 = jobs
            .iter()
            .find(|j| j.variant == VariantKind::Human && j.task.as_str() == C2)
            .unwrap();
        assert_eq!(human_2.permanently_failed.as_deref(), Some("needs cuda 11"));
        let human_1 = jobs
            .iter()
            .find(|j| j.variant == VariantKind::Human && j.task.as_str() == C1)
            .unwrap();
        assert_eq!(
            (human_1.max_jobs, human_1.pre_build_patch.as_deref()),
            (Some(8), None)
        );
        // --max-jobs wins over everything.
        let options = PlanOptions {
            max_jobs: Some(3),
            ..Default::default()
        };
        assert!(
            plan(&suite(&extra), &tasks, &[], &options)
                .unwrap()
                .iter()
                .all(|j| j.max_jobs == Some(3))
        );
        // The recipe hash follows the recipe.
        assert_ne!(baseline_p.recipe_hash, human_1.recipe_hash);
    }

    #[test]
    fn context_git_is_in_the_recipe_hash_only_when_set() {
        let tasks = [task(C1, P)];
        let plain = plan(&suite(""), &tasks, &[], &PlanOptions::default()).unwrap();
        let mut with_git_suite = suite("");
        with_git_suite.build.context_git = true;
        let with_git = plan(&with_git_suite, &tasks, &[], &PlanOptions::default()).unwrap();
        // Unset, the recipe serialises as before the setting existed: the same hashes.
        let recipe = serde_json::to_value(&plain[0].recipe).unwrap();
        assert_eq!(
            recipe,
            serde_json::json!({ "kind": "full", "dockerfile": "Dockerfile" })
        );
        assert!(matches!(
            with_git[0].recipe,
            Recipe::Full {
                context_git: true,
                ..
            }
        ));
        assert_ne!(plain[0].recipe_hash, with_git[0].recipe_hash);
        assert_ne!(
            plain[0].labels[labels::RECIPE],
            with_git[0].labels[labels::RECIPE]
        );
    }

    #[test]
    fn the_variant_filter_selects() {
        let tasks = [task(C1, P)];
        let cands = [CandidatePatch::new(
            tasks[0].commit.clone(),
            CandidateName::parse("py").unwrap(),
            PY_PATCH.into(),
        )];
        for (filter, expected) in [
            (VariantFilter::Human, vec!["human"]),
            (VariantFilter::Baseline, vec!["baseline"]),
            (VariantFilter::Candidates, vec!["candidate:py"]),
        ] {
            let jobs = plan(
                &suite(""),
                &tasks,
                &cands,
                &PlanOptions {
                    variants: filter,
                    ..Default::default()
                },
            )
            .unwrap();
            let got: Vec<String> = jobs.iter().map(|j| j.variant.to_string()).collect();
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn era_args_sit_between_the_suite_args_and_a_commit_override() {
        let tasks = [task(C1, P)];
        let extra = "[build.overrides.\"1111111\"]\nargs = { nvcc_threads = \"1\" }\n";
        let mut era_args = BTreeMap::new();
        for commit in [C1, P] {
            era_args.insert(
                CommitId::parse(commit).unwrap(),
                BTreeMap::from([
                    ("nvcc_threads".to_string(), "4".to_string()),
                    ("WHEEL_COMMIT".to_string(), commit.to_string()),
                ]),
            );
        }
        let options = PlanOptions {
            era_args,
            ..Default::default()
        };
        let jobs = plan(&suite(extra), &tasks, &[], &options).unwrap();
        let human = jobs
            .iter()
            .find(|j| j.variant == VariantKind::Human)
            .unwrap();
        let baseline = jobs
            .iter()
            .find(|j| j.variant == VariantKind::Baseline)
            .unwrap();
        // The override (for C1 only) wins over the era; the era over build.args.
        assert_eq!(human.args["nvcc_threads"], "1");
        assert_eq!(baseline.args["nvcc_threads"], "4");
        assert_eq!(human.args["WHEEL_COMMIT"], C1);
        assert_eq!(baseline.args["WHEEL_COMMIT"], P);
        let plain = plan(&suite(extra), &tasks, &[], &PlanOptions::default()).unwrap();
        assert_ne!(
            plain[1].recipe_hash, baseline.recipe_hash,
            "era args are part of the recipe"
        );
    }
}
