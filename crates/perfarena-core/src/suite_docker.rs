//! The suite's `[docker]` and `[secrets]` sections: how the docker backend runs an attempt
//! (GPUs, shared memory, limits, mounts, network per variant kind, where the benchmark harness
//! comes from) and which secrets reach which variants. Parsing and checks only; the backend
//! turns these into container settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::VariantKind;

/// `[docker]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSection {
    /// `""` (none), `"all"`, a count or a list of device ids.
    pub gpus: GpuRequest,
    /// GPU slots for `--parallel`: each a comma-separated list of device ids.
    pub gpu_slots: Vec<String>,
    pub shm_size: String,
    pub memory: String,
    pub cpuset: String,
    pub init: bool,
    /// Seconds between SIGTERM and SIGKILL when stopping a container; 0: `bench.kill_grace_s`.
    pub kill_grace_s: u64,
    /// Read-only mounts, `HOST_PATH:CONTAINER_PATH`.
    pub mounts: Vec<String>,
    /// Resource limits, name → value (soft = hard; -1 is unlimited).
    pub ulimits: BTreeMap<String, i64>,
    /// Extra environment of the containers (after `bench.env`).
    pub env: BTreeMap<String, String>,
    /// `baseline`, `image` or `dir`.
    pub harness_from: String,
    pub harness_dir: String,
    pub network: NetworkSection,
}

/// `[docker.network]`: the network mode per variant kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    pub baseline: String,
    pub human: String,
    pub candidate: String,
}

impl NetworkSection {
    pub fn for_variant(&self, variant: &VariantKind) -> &str {
        match variant {
            VariantKind::Baseline => &self.baseline,
            VariantKind::Human => &self.human,
            VariantKind::Candidate(_) => &self.candidate,
        }
    }
}

/// Which GPUs an attempt gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GpuRequest {
    Count(u32),
    Ids(Vec<String>),
    /// `""` or `"all"`.
    Word(String),
}

impl GpuRequest {
    pub fn is_none(&self) -> bool {
        matches!(self, GpuRequest::Word(w) if w.is_empty())
            || matches!(self, GpuRequest::Count(0))
            || matches!(self, GpuRequest::Ids(ids) if ids.is_empty())
    }
}

/// Where the benchmark harness files of every variant come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HarnessFrom {
    /// The task's parent revision in the repository (what the baseline image holds).
    Baseline,
    /// Each image's own files (no integrity guarantee).
    Image,
    /// A pinned directory on this host.
    Dir(String),
}

impl DockerSection {
    pub fn harness_from(&self) -> HarnessFrom {
        match self.harness_from.as_str() {
            "image" => HarnessFrom::Image,
            "dir" => HarnessFrom::Dir(self.harness_dir.clone()),
            _ => HarnessFrom::Baseline,
        }
    }

    /// The GPU slots, each a list of device ids.
    pub fn slots(&self) -> Vec<Vec<String>> {
        self.gpu_slots
            .iter()
            .map(|slot| {
                slot.split(',')
                    .map(|id| id.trim().to_string())
                    .filter(|id| !id.is_empty())
                    .collect()
            })
            .collect()
    }
}

/// `[secrets]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSection {
    /// Variant kinds that get the secrets: `baseline`, `human`, `candidate`.
    pub allow: Vec<String>,
    /// Environment variable name in the container → where its value comes from.
    pub vars: BTreeMap<String, SecretSource>,
}

impl SecretsSection {
    pub fn allows(&self, variant: &VariantKind) -> bool {
        let kind = match variant {
            VariantKind::Baseline => "baseline",
            VariantKind::Human => "human",
            VariantKind::Candidate(_) => "candidate",
        };
        self.allow.iter().any(|a| a == kind)
    }
}

/// Where a secret's value is read from (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable of the perfarena process.
    #[serde(default)]
    pub env: String,
    /// A file (relative to the suite file); its content, trimmed.
    #[serde(default)]
    pub file: String,
}

/// A byte size such as `16g`, `512m`, `1024` (bytes), `1.5G`.
pub fn parse_byte_size(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((idx, _)) => text.split_at(idx),
        None => (text, ""),
    };
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value: f64 = number.trim().parse().ok()?;
    (value >= 0.0 && value.is_finite()).then(|| (value * multiplier) as i64)
}

/// Checks the two sections; errors are `(key path, message)`.
pub fn validate(docker: &DockerSection, secrets: &SecretsSection) -> Result<(), (String, String)> {
    let err = |path: &str, message: &str| Err((path.to_string(), message.to_string()));
    match &docker.gpus {
        GpuRequest::Word(word) if !word.is_empty() && word != "all" => {
            return err(
                "docker.gpus",
                "expected \"\" (none), \"all\", a count or a list of device ids like [\"0\", \"1\"]",
            );
        }
        GpuRequest::Ids(ids) if ids.iter().any(|id| id.trim().is_empty()) => {
            return err("docker.gpus", "device ids must not be empty");
        }
        _ => {}
    }
    for (idx, slot) in docker.slots().iter().enumerate() {
        if slot.is_empty() {
            return err(
                &format!("docker.gpu_slots[{idx}]"),
                "a slot lists device ids, e.g. \"0\" or \"0,1\"",
            );
        }
    }
    let slots = docker.slots();
    let mut seen = std::collections::BTreeSet::new();
    for id in slots.iter().flatten() {
        if !seen.insert(id) {
            return err(
                "docker.gpu_slots",
                &format!("device {id} is in two slots: two attempts would share it"),
            );
        }
    }
    for (path, value) in [
        ("docker.shm_size", &docker.shm_size),
        ("docker.memory", &docker.memory),
    ] {
        if !value.is_empty() && parse_byte_size(value).is_none() {
            return err(path, "expected a size such as \"16g\" or \"512m\"");
        }
    }
    for (idx, mount) in docker.mounts.iter().enumerate() {
        let parts: Vec<&str> = mount.split(':').collect();
        let ok = parts.len() == 2 && parts[0].starts_with('/') && parts[1].starts_with('/');
        if !ok {
            return err(
                &format!("docker.mounts[{idx}]"),
                "expected \"/host/path:/container/path\" (absolute paths; mounted read-only)",
            );
        }
    }
    match docker.harness_from.as_str() {
        "baseline" | "image" => {}
        "dir" if !docker.harness_dir.trim().is_empty() => {}
        "dir" => {
            return err(
                "docker.harness_dir",
                "harness_from = \"dir\" needs harness_dir, the directory holding the harness files",
            );
        }
        _ => {
            return err(
                "docker.harness_from",
                "expected \"baseline\", \"image\" or \"dir\"",
            );
        }
    }
    for (path, value) in [
        ("docker.network.baseline", &docker.network.baseline),
        ("docker.network.human", &docker.network.human),
        ("docker.network.candidate", &docker.network.candidate),
    ] {
        if value.trim().is_empty() {
            return err(
                path,
                "expected a docker network mode: \"none\", \"host\", \"bridge\" or a network name",
            );
        }
    }
    for (idx, kind) in secrets.allow.iter().enumerate() {
        if !matches!(kind.as_str(), "baseline" | "human" | "candidate") {
            return err(
                &format!("secrets.allow[{idx}]"),
                "expected \"baseline\", \"human\" or \"candidate\"",
            );
        }
    }
    for (name, source) in &secrets.vars {
        let path = format!("secrets.vars.{name}");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return err(
                &path,
                "a secret's name is an environment variable name (letters, digits, _)",
            );
        }
        if source.env.is_empty() == source.file.is_empty() {
            return err(&path, "set exactly one of env = \"VAR\" or file = \"path\"");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("16g"), Some(16 << 30));
        assert_eq!(parse_byte_size("512M"), Some(512 << 20));
        assert_eq!(parse_byte_size("64mb"), Some(64 << 20));
        assert_eq!(parse_byte_size("1024"), Some(1024));
        assert_eq!(parse_byte_size("1.5k"), Some(1536));
        assert_eq!(parse_byte_size("lots"), None);
        assert_eq!(parse_byte_size("3x"), None);
    }
}
