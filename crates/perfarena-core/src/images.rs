//! Image names: each variant's image ref, from the suite's templates.

use std::collections::BTreeMap;

use crate::ids::VariantKind;
use crate::suite::ImagesConfig;
use crate::task::Task;
use crate::template::{TemplateError, expand};

/// The image ref of a task's variant. Candidates need their patch's sha256.
pub fn image_ref(
    images: &ImagesConfig,
    task: &Task,
    variant: &VariantKind,
    patch_sha: Option<&str>,
) -> Result<String, TemplateError> {
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    vars.insert("registry", images.registry.clone());
    vars.insert("repo", images.repo.clone());
    vars.insert("commit", task.commit.to_string());
    vars.insert("task", task.short_id().to_string());
    if let Some(parent) = &task.parent {
        vars.insert("parent", parent.to_string());
    }
    if let Some(name) = variant.candidate() {
        vars.insert("candidate", name.to_string());
    }
    if let Some(sha) = patch_sha {
        vars.insert("patch_sha", sha.to_string());
    }
    let template = match variant {
        VariantKind::Baseline => &images.baseline,
        VariantKind::Human => &images.human,
        VariantKind::Candidate(_) => &images.candidate,
    };
    let expanded = expand(template, &vars)?;
    // A registry left empty leaves a leading slash: `/repo:tag` → `repo:tag`.
    Ok(expanded.trim_start_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CandidateName, CommitId};
    use crate::suite::Suite;

    #[test]
    fn refs_per_variant() {
        let suite =
            Suite::from_toml_str("[images]\nregistry = \"reg:5000\"\nrepo = \"vllm\"\n", "s")
                .unwrap();
        let mut task =
            Task::new(CommitId::parse("35fad35a485eac9195c510731ba4a9d297dfd963").unwrap());
        task.parent = Some(CommitId::parse("733e7c9e95f5b066ac420b00701eef7ea164a79e").unwrap());
        assert_eq!(
            image_ref(&suite.images, &task, &VariantKind::Baseline, None).unwrap(),
            "reg:5000/vllm:baseline-733e7c9e95f5"
        );
        assert_eq!(
            image_ref(&suite.images, &task, &VariantKind::Human, None).unwrap(),
            "reg:5000/vllm:35fad35a485eac9195c510731ba4a9d297dfd963"
        );
        let cand = VariantKind::Candidate(CandidateName::parse("agent-a").unwrap());
        assert_eq!(
            image_ref(&suite.images, &task, &cand, Some(&"ab".repeat(32))).unwrap(),
            "reg:5000/vllm:candidate-35fad35a485e-agent-a-abababababab"
        );
        assert!(image_ref(&suite.images, &task, &cand, None).is_err());
        task.parent = None;
        assert!(image_ref(&suite.images, &task, &VariantKind::Baseline, None).is_err());
    }
}
