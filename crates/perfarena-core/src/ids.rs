//! Checked identifiers: commit hashes, candidate names, variants and run ids.
//!
//! Values are validated once at the edge (import, CLI arguments, the store) so that the rest
//! of the code can take them as given.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not a commit hash: expected 4 to 40 hexadecimal characters")]
    BadCommit(String),
    #[error(
        "`{0}` is not a candidate name: use letters, digits, '.', '_' and '-' (at most 64, no `..`, not starting with '.' or '-')"
    )]
    BadCandidate(String),
    #[error(
        "`{0}` is not a run id: use letters, digits, '.', '_' and '-' (at most 64, no `..`, not starting with '.' or '-')"
    )]
    BadRunId(String),
    #[error("`{0}` is not a variant: expected `baseline`, `human` or `candidate:<name>`")]
    BadVariant(String),
}

/// A git commit hash, lower-case hexadecimal; full (40 characters) once resolved against a
/// repository, possibly a prefix when it comes from a file that only had a short one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(String);

impl CommitId {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let trimmed = text.trim();
        let ok =
            (4..=40).contains(&trimmed.len()) && trimmed.chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            Ok(CommitId(trimmed.to_ascii_lowercase()))
        } else {
            Err(IdError::BadCommit(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first `n` characters (all of it when shorter).
    pub fn short(&self, n: usize) -> &str {
        &self.0[..n.min(self.0.len())]
    }

    pub fn is_full(&self) -> bool {
        self.0.len() == 40
    }

    /// Whether `self` (possibly a prefix) names `full`.
    pub fn is_prefix_of(&self, full: &CommitId) -> bool {
        full.0.starts_with(&self.0)
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CommitId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CommitId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CommitId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The name of a candidate patch (`candidate:<name>`), e.g. an agent's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CandidateName(String);

impl CandidateName {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        if is_safe_name(text) {
            Ok(CandidateName(text.to_string()))
        } else {
            Err(IdError::BadCandidate(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CandidateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CandidateName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CandidateName::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Which version of a task's code an attempt measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VariantKind {
    /// The parent commit: the code before the optimisation.
    Baseline,
    /// The real commit, as its author wrote it.
    Human,
    /// A patch against the parent, e.g. written by a coding agent.
    Candidate(CandidateName),
}

impl VariantKind {
    pub fn candidate(&self) -> Option<&CandidateName> {
        match self {
            VariantKind::Candidate(name) => Some(name),
            _ => None,
        }
    }

    /// A name usable as a path component (`baseline`, `human`, `candidate-<name>`).
    pub fn dir_name(&self) -> String {
        match self {
            VariantKind::Baseline => "baseline".into(),
            VariantKind::Human => "human".into(),
            VariantKind::Candidate(name) => format!("candidate-{name}"),
        }
    }
}

impl fmt::Display for VariantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VariantKind::Baseline => f.write_str("baseline"),
            VariantKind::Human => f.write_str("human"),
            VariantKind::Candidate(name) => write!(f, "candidate:{name}"),
        }
    }
}

impl FromStr for VariantKind {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        match text {
            "baseline" => Ok(VariantKind::Baseline),
            "human" => Ok(VariantKind::Human),
            _ => {
                let name = text
                    .strip_prefix("candidate:")
                    .or_else(|| text.strip_prefix("candidate-"))
                    .ok_or_else(|| IdError::BadVariant(text.to_string()))?;
                CandidateName::parse(name)
                    .map(VariantKind::Candidate)
                    .map_err(|_| IdError::BadVariant(text.to_string()))
            }
        }
    }
}

impl Serialize for VariantKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VariantKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Identifies one invocation of `perfarena run` (kept across `--resume`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

/// A name that is safe as one path component and one shell word: `[A-Za-z0-9._-]`, 1 to 64
/// characters, no `..`, not starting with `-` or `.`.
fn is_safe_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && !text.contains("..")
        && !text.starts_with(['-', '.'])
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl RunId {
    /// A run id given by a user (`--run-id`): it names directories, so it is a safe name.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        if is_safe_name(text) {
            Ok(RunId(text.to_string()))
        } else {
            Err(IdError::BadRunId(text.to_string()))
        }
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids_are_hex_and_lowercased() {
        assert_eq!(CommitId::parse(" ABCDEF12 ").unwrap().as_str(), "abcdef12");
        assert!(CommitId::parse("abc").is_err());
        assert!(CommitId::parse("xyz12345").is_err());
        assert!(CommitId::parse(&"a".repeat(41)).is_err());
        let full = CommitId::parse(&"ab".repeat(20)).unwrap();
        assert!(full.is_full());
        assert!(CommitId::parse("abab").unwrap().is_prefix_of(&full));
        assert_eq!(full.short(12), "abababababab");
    }

    #[test]
    fn variants_round_trip_through_text() {
        for text in ["baseline", "human", "candidate:agent-1.2_x"] {
            let variant: VariantKind = text.parse().unwrap();
            assert_eq!(variant.to_string(), text);
        }
        assert_eq!(
            "candidate-foo".parse::<VariantKind>().unwrap().to_string(),
            "candidate:foo"
        );
        assert!("candidate:".parse::<VariantKind>().is_err());
        assert!("candidate:a b".parse::<VariantKind>().is_err());
        assert!("parent".parse::<VariantKind>().is_err());
    }

    #[test]
    fn names_are_safe_path_components() {
        for good in ["fast", "agent-a.v2", "r20261204-213835-4193", "a_b"] {
            assert!(CandidateName::parse(good).is_ok(), "{good}");
            assert!(RunId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "..", "a..b", "../x", "a/b", ".hidden", "-rf", "a b", "x$(id)", "a;b", "\u{e9}",
            "a\nb",
        ] {
            assert!(CandidateName::parse(bad).is_err(), "{bad:?}");
            assert!(RunId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(CandidateName::parse(&"a".repeat(65)).is_err());
    }
}
