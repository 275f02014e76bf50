//! Failure triage: which failures are the infrastructure's (image, build, environment), which
//! are resource limits, which are the harness's and which are the change's own.
//!
//! Two steps, both pure. [`Triage::classify_attempt`] reads one attempt's logs and status and
//! names the signature rule that matched, with the log line as evidence. [`judge_task`] then
//! looks across a task's variants: the same infra signature on baseline and human blames
//! nobody; a candidate failing where the baseline works is the candidate's failure; a human
//! failing on an infra signature while a candidate works is a broken human image.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::attempt::{AttemptStatus, FailureClass, FailureKind};
use crate::ids::VariantKind;

/// A log signature: when `pattern` matches a line, the failure is of `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureRule {
    /// Short id, e.g. `missing-compiled-extension`.
    pub id: String,
    pub kind: FailureKind,
    /// A regular expression matched against each log line.
    pub pattern: String,
    /// What it means, for reports.
    #[serde(default)]
    pub description: String,
    /// What it would take to fix, for recoverability (e.g. "rebuild the image").
    #[serde(default)]
    pub fix: String,
}

fn rule(id: &str, kind: FailureKind, pattern: &str, description: &str, fix: &str) -> SignatureRule {
    SignatureRule {
        id: id.into(),
        kind,
        pattern: pattern.into(),
        description: description.into(),
        fix: fix.into(),
    }
}

/// The built-in rules, most specific first (vLLM and SGLang's known failures).
pub fn builtin_rules() -> Vec<SignatureRule> {
    use FailureKind::*;
    vec![
        rule(
            "missing-compiled-extension",
            Infra,
            r"No module named '[\w.]+\._C'",
            "the image was built without its compiled extension",
            "rebuild the image with its compile step",
        ),
        rule(
            "flash-attn-missing",
            Infra,
            r"No module named '[\w.]*(vllm_flash_attn|flash_attn)[\w.]*'",
            "the flash-attention build or module layout does not match the code",
            "rebuild the image with the matching flash-attn build",
        ),
        rule(
            "transformers-mismatch",
            Infra,
            r"No module named 'transformers\.[\w.]+'|cannot import name '\w+' from 'transformers",
            "the installed transformers version does not match",
            "pin a matching transformers version in the image",
        ),
        rule(
            "no-kernel-image",
            Infra,
            r"no kernel image is available for execution|is not compatible with the current PyTorch installation|CUDA capability sm_\d+ is not compatible",
            "compiled for other GPU architectures",
            "rebuild with torch_cuda_arch_list covering this GPU",
        ),
        rule(
            "undefined-symbol",
            Infra,
            r"undefined symbol: ",
            "binary mismatch between compiled extension and torch (ABI)",
            "rebuild the image against the installed torch",
        ),
        rule(
            "no-gpu",
            Infra,
            r"No CUDA GPUs are available|Found no NVIDIA driver|CUDA driver version is insufficient|NVIDIA-SMI has failed",
            "no usable GPU or driver in the container",
            "run on a GPU node with the right driver and --gpus",
        ),
        rule(
            "cuda-oom",
            Resource,
            r"CUDA out of memory|torch\.(cuda\.)?OutOfMemoryError|OutOfMemoryError: CUDA",
            "GPU out of memory",
            "lower gpu_memory_utilization or batch size, or use a bigger GPU",
        ),
        rule(
            "host-oom",
            Resource,
            r"Killed signal terminated program|c\+\+: fatal error: Killed|Out of memory: Killed process|oom[-_ ]kill|OOMKilled",
            "host out of memory",
            "lower max_jobs or give the job more memory",
        ),
        rule(
            "disk-full",
            Resource,
            r"No space left on device",
            "disk full",
            "free disk space (old images, caches)",
        ),
        rule(
            "model-access",
            Infra,
            r"Repository Not Found|Cannot access gated repo|401 Client Error|is not a local folder and is not a valid model identifier|HFValidationError",
            "the model cannot be loaded (missing, gated or no token)",
            "supply the model in the cache or a hub token",
        ),
        rule(
            "missing-image",
            Infra,
            r"No such image|manifest unknown|pull access denied|image .* not found",
            "the image does not exist",
            "build the image",
        ),
        rule(
            "port-in-use",
            Infra,
            r"Address already in use",
            "the server's port was taken",
            "rerun (perfarena picks a free port)",
        ),
        rule(
            "harness-mismatch",
            Harness,
            r"unrecognized arguments:|error: unrecognized|no such option:",
            "the benchmark harness does not fit this version of the code",
            "use the harness of this era (see the presets)",
        ),
        rule(
            "module-not-found",
            Candidate,
            r"ModuleNotFoundError: No module named '[\w.]+'|ImportError: cannot import name",
            "an import the code needs is missing",
            "fix the import",
        ),
        rule(
            "python-exception",
            Candidate,
            r"^\s*(\w+\.)*\w*(Error|Exception)(: .*)?$",
            "the program raised an exception",
            "see the evidence line",
        ),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("triage rule `{id}`: invalid pattern: {message}")]
pub struct TriageError {
    pub id: String,
    pub message: String,
}

/// Compiled rules: the suite's own first, then the built-in ones.
#[derive(Debug, Clone)]
pub struct Triage {
    rules: Vec<(SignatureRule, Regex)>,
}

impl Triage {
    pub fn new(suite_rules: &[SignatureRule]) -> Result<Triage, TriageError> {
        let mut rules = Vec::new();
        for rule in suite_rules.iter().cloned().chain(builtin_rules()) {
            let regex = Regex::new(&rule.pattern).map_err(|e| TriageError {
                id: rule.id.clone(),
                message: e.to_string(),
            })?;
            rules.push((rule, regex));
        }
        Ok(Triage { rules })
    }

    /// The built-in rules only.
    pub fn builtin() -> Triage {
        Triage::new(&[]).expect("built-in triage rules compile")
    }

    pub fn rule(&self, id: &str) -> Option<&SignatureRule> {
        self.rules.iter().map(|(r, _)| r).find(|r| r.id == id)
    }

    /// The first rule (in priority order) matching any line of `texts`; the evidence is the last
    /// matching line (a traceback ends with its error).
    pub fn classify_text(&self, texts: &[&str]) -> Option<FailureClass> {
        for (rule, regex) in &self.rules {
            let mut evidence = None;
            for text in texts {
                for line in text.lines() {
                    let line = line.rsplit('\r').next().unwrap_or(line);
                    if regex.is_match(line) {
                        evidence = Some(line.trim());
                    }
                }
            }
            if let Some(line) = evidence {
                return Some(FailureClass {
                    kind: rule.kind,
                    signature: rule.id.clone(),
                    evidence: truncate(line, 300),
                });
            }
        }
        None
    }

    /// Classifies one attempt from its status, message and logs (server, client, setup…).
    /// `None` for an ok attempt.
    pub fn classify_attempt(
        &self,
        status: AttemptStatus,
        message: &str,
        logs: &[&str],
    ) -> Option<FailureClass> {
        if status == AttemptStatus::Ok {
            return None;
        }
        let mut texts: Vec<&str> = logs.to_vec();
        texts.push(message);
        if let Some(class) = self.classify_text(&texts) {
            // A status that says more than a generic exception keeps its own signature.
            let generic = class.signature == "python-exception";
            if !(generic
                && matches!(
                    status,
                    AttemptStatus::Timeout
                        | AttemptStatus::PatchFailed
                        | AttemptStatus::MissingImage
                ))
            {
                return Some(class);
            }
        }
        let evidence = truncate(message.lines().next().unwrap_or(""), 300);
        let (kind, signature) = match status {
            AttemptStatus::Ok => return None,
            AttemptStatus::PatchFailed => (FailureKind::Candidate, "patch-does-not-apply"),
            AttemptStatus::MissingImage => (FailureKind::Infra, "missing-image"),
            AttemptStatus::BuildFailed => (FailureKind::Infra, "build-failed"),
            AttemptStatus::InfraError => (FailureKind::Infra, "infra-error"),
            AttemptStatus::Timeout if message.contains("not ready") => {
                (FailureKind::Candidate, "readiness-timeout")
            }
            AttemptStatus::Timeout => (FailureKind::Candidate, "attempt-timeout"),
            AttemptStatus::Crashed if message.contains("before it was ready") => {
                (FailureKind::Candidate, "server-exited-before-ready")
            }
            AttemptStatus::Crashed => (FailureKind::Candidate, "crashed"),
            AttemptStatus::NoMetrics => (FailureKind::Candidate, "no-metrics"),
            AttemptStatus::NotRun => (FailureKind::Infra, "not-run"),
        };
        Some(FailureClass {
            kind,
            signature: signature.into(),
            evidence,
        })
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_string(),
    }
}

/// How one variant of a task fared, for the cross-variant judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantFate {
    pub variant: VariantKind,
    /// At least one attempt measured.
    pub worked: bool,
    /// The failure of its failed attempts (the most recent), if it never worked.
    pub failure: Option<FailureClass>,
}

/// Who is to blame for a variant's failure, after looking at the other variants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    pub variant: VariantKind,
    pub blame: FailureKind,
    /// `candidate_broke_it`, `human_image_broken`, `shared_infra_failure`, `infra`, `resource`,
    /// `harness`, `candidate_failed`, `human_failed`, `baseline_failed`.
    pub finding: String,
    pub reason: String,
    pub signature: String,
    pub evidence: String,
}

/// Judges every failed variant of one task against the others.
pub fn judge_task(fates: &[VariantFate]) -> Vec<Judgement> {
    let find = |kind: &VariantKind| fates.iter().find(|f| &f.variant == kind);
    let baseline = find(&VariantKind::Baseline);
    let human = find(&VariantKind::Human);
    let baseline_worked = baseline.map(|b| b.worked).unwrap_or(false);
    let any_candidate_worked = fates
        .iter()
        .any(|f| f.variant.candidate().is_some() && f.worked);
    let mut out = Vec::new();
    for fate in fates.iter().filter(|f| !f.worked) {
        let Some(failure) = &fate.failure else {
            continue;
        };
        let same_sig_elsewhere = |other: Option<&VariantFate>| {
            other.is_some_and(|o| {
                !o.worked
                    && o.failure
                        .as_ref()
                        .is_some_and(|f| f.signature == failure.signature)
            })
        };
        let (blame, finding, reason) = match (&fate.variant, failure.kind) {
            (_, FailureKind::Resource) => (
                FailureKind::Resource,
                "resource",
                format!("resource limit: {}", failure.signature),
            ),
            (_, FailureKind::Harness) => (
                FailureKind::Harness,
                "harness",
                "the benchmark harness does not fit this code".to_string(),
            ),
            (VariantKind::Baseline, FailureKind::Infra) if same_sig_elsewhere(human) => (
                FailureKind::Infra,
                "shared_infra_failure",
                format!(
                    "baseline and human both fail with `{}`: infrastructure, nobody's change",
                    failure.signature
                ),
            ),
            (VariantKind::Human, FailureKind::Infra) if same_sig_elsewhere(baseline) => (
                FailureKind::Infra,
                "shared_infra_failure",
                format!(
                    "baseline and human both fail with `{}`: infrastructure, nobody's change",
                    failure.signature
                ),
            ),
            (VariantKind::Human, FailureKind::Infra) if any_candidate_worked || baseline_worked => {
                (
                    FailureKind::Infra,
                    "human_image_broken",
                    format!(
                        "human fails with `{}` while code on the baseline image works: the human image is broken, not the change",
                        failure.signature
                    ),
                )
            }
            (VariantKind::Candidate(_), _)
                if failure.kind == FailureKind::Infra
                    && !baseline_worked
                    && same_sig_elsewhere(baseline) =>
            {
                (
                    FailureKind::Infra,
                    "shared_infra_failure",
                    format!(
                        "the baseline fails the same way (`{}`): infrastructure, not the candidate",
                        failure.signature
                    ),
                )
            }
            (VariantKind::Candidate(_), FailureKind::Infra)
                if failure.signature == "missing-image" || failure.signature == "build-failed" =>
            {
                (
                    FailureKind::Infra,
                    "infra",
                    format!(
                        "the candidate's image could not be had: {}",
                        failure.signature
                    ),
                )
            }
            (VariantKind::Candidate(_), _) if baseline_worked => (
                FailureKind::Candidate,
                "candidate_broke_it",
                format!(
                    "the baseline works with the same harness; the candidate fails with `{}`",
                    failure.signature
                ),
            ),
            (VariantKind::Candidate(_), kind) => (
                kind,
                "candidate_failed",
                format!(
                    "the candidate fails with `{}` and the baseline did not work either",
                    failure.signature
                ),
            ),
            (VariantKind::Human, kind) => (
                kind,
                "human_failed",
                format!("the human change fails with `{}`", failure.signature),
            ),
            (VariantKind::Baseline, kind) => (
                kind,
                "baseline_failed",
                format!("the baseline fails with `{}`", failure.signature),
            ),
        };
        out.push(Judgement {
            variant: fate.variant.clone(),
            blame,
            finding: finding.to_string(),
            reason,
            signature: failure.signature.clone(),
            evidence: failure.evidence.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CandidateName;

    fn check(log: &str, status: AttemptStatus, kind: FailureKind, signature: &str) {
        let class = Triage::builtin()
            .classify_attempt(status, "", &[log])
            .unwrap_or_else(|| panic!("no class for {log:?}"));
        assert_eq!(
            (class.kind, class.signature.as_str()),
            (kind, signature),
            "{log:?} → {class:?}"
        );
        assert!(!class.evidence.is_empty());
    }

    #[test]
    fn known_signatures() {
        use AttemptStatus::*;
        use FailureKind::*;
        let tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\n";
        check(
            &format!("{tb}ModuleNotFoundError: No module named 'vllm._C'"),
            Crashed,
            Infra,
            "missing-compiled-extension",
        );
        check(
            &format!("{tb}ModuleNotFoundError: No module named 'toyllm._C'"),
            Crashed,
            Infra,
            "missing-compiled-extension",
        );
        check(
            "ModuleNotFoundError: No module named 'vllm.vllm_flash_attn.fa_utils'",
            Crashed,
            Infra,
            "flash-attn-missing",
        );
        check(
            "ModuleNotFoundError: No module named 'transformers.models.mllama'",
            Crashed,
            Infra,
            "transformers-mismatch",
        );
        check(
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            Crashed,
            Resource,
            "cuda-oom",
        );
        check(
            "RuntimeError: CUDA error: no kernel image is available for execution on the device",
            Crashed,
            Infra,
            "no-kernel-image",
        );
        check(
            "ImportError: /x/_C.abi3.so: undefined symbol: _ZN3c104cuda",
            Crashed,
            Infra,
            "undefined-symbol",
        );
        check(
            "benchmark_serving.py: error: unrecognized arguments: --backend vllm",
            Crashed,
            Harness,
            "harness-mismatch",
        );
        check(
            "c++: fatal error: Killed signal terminated program cc1plus",
            BuildFailed,
            Resource,
            "host-oom",
        );
        check(
            "OSError: [Errno 28] No space left on device",
            BuildFailed,
            Resource,
            "disk-full",
        );
        check(
            &format!("{tb}ModuleNotFoundError: No module named 'toyllm.fastpath'"),
            Crashed,
            Candidate,
            "module-not-found",
        );
        check(
            &format!("{tb}ValueError: bad thing"),
            Crashed,
            Candidate,
            "python-exception",
        );
    }

    #[test]
    fn status_fallbacks_and_suite_rules() {
        let t = Triage::builtin();
        let c = t
            .classify_attempt(
                AttemptStatus::Timeout,
                "server not ready after 300s (readiness timeout)",
                &["loading..."],
            )
            .unwrap();
        assert_eq!(c.signature, "readiness-timeout");
        let c = t
            .classify_attempt(
                AttemptStatus::NoMetrics,
                "client exited 0 but its output has no result",
                &[""],
            )
            .unwrap();
        assert_eq!(c.signature, "no-metrics");
        let c = t
            .classify_attempt(
                AttemptStatus::PatchFailed,
                "error: patch failed: a.py:3",
                &[],
            )
            .unwrap();
        assert_eq!(
            (c.kind, c.signature.as_str()),
            (FailureKind::Candidate, "patch-does-not-apply")
        );
        assert!(
            t.classify_attempt(AttemptStatus::Ok, "", &["CUDA out of memory"])
                .is_none()
        );
        let custom = Triage::new(&[SignatureRule {
            id: "my-flaky-nccl".into(),
            kind: FailureKind::Infra,
            pattern: "NCCL WARN".into(),
            description: String::new(),
            fix: String::new(),
        }])
        .unwrap();
        let c = custom
            .classify_attempt(
                AttemptStatus::Crashed,
                "",
                &["NCCL WARN net\nValueError: x"],
            )
            .unwrap();
        assert_eq!(c.signature, "my-flaky-nccl");
        assert!(
            Triage::new(&[SignatureRule {
                id: "bad".into(),
                kind: FailureKind::Infra,
                pattern: "(".into(),
                description: String::new(),
                fix: String::new()
            }])
            .is_err()
        );
    }

    fn fate(
        variant: VariantKind,
        worked: bool,
        failure: Option<(FailureKind, &str)>,
    ) -> VariantFate {
        VariantFate {
            variant,
            worked,
            failure: failure.map(|(kind, sig)| FailureClass {
                kind,
                signature: sig.into(),
                evidence: "line".into(),
            }),
        }
    }

    #[test]
    fn cross_variant_judgement() {
        let cand = VariantKind::Candidate(CandidateName::parse("a").unwrap());
        // Candidate broke it.
        let j = judge_task(&[
            fate(VariantKind::Baseline, true, None),
            fate(VariantKind::Human, true, None),
            fate(
                cand.clone(),
                false,
                Some((FailureKind::Candidate, "module-not-found")),
            ),
        ]);
        assert_eq!(
            (j[0].blame, j[0].finding.as_str()),
            (FailureKind::Candidate, "candidate_broke_it")
        );
        // Same infra signature on baseline and human: nobody blamed.
        let j = judge_task(&[
            fate(
                VariantKind::Baseline,
                false,
                Some((FailureKind::Infra, "missing-compiled-extension")),
            ),
            fate(
                VariantKind::Human,
                false,
                Some((FailureKind::Infra, "missing-compiled-extension")),
            ),
        ]);
        assert!(
            j.iter()
                .all(|j| j.finding == "shared_infra_failure" && j.blame == FailureKind::Infra)
        );
        // Human image broken while a candidate works.
        let j = judge_task(&[
            fate(VariantKind::Baseline, true, None),
            fate(
                VariantKind::Human,
                false,
                Some((FailureKind::Infra, "missing-compiled-extension")),
            ),
            fate(cand.clone(), true, None),
        ]);
        assert_eq!(j[0].finding, "human_image_broken");
        // Resource failures stay resource.
        let j = judge_task(&[
            fate(VariantKind::Baseline, true, None),
            fate(cand, false, Some((FailureKind::Resource, "cuda-oom"))),
        ]);
        assert_eq!(j[0].blame, FailureKind::Resource);
    }
}
