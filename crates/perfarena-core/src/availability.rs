//! Image availability as data: rows of the store's `images` table, complete listings of registry
//! repositories, and the lookup that says whether an image ref is present, missing or unknown.
//!
//! Pure: the rows come from a registry check (`perfarena images status`) or from imported
//! listings (`perfarena images import`); this module only interprets them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether an image is somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Present,
    Missing,
    Unknown,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Present => "present",
            Presence::Missing => "missing",
            Presence::Unknown => "unknown",
        }
    }

    /// Reads a column value; anything not recognisably present or missing is unknown.
    pub fn from_column(text: &str) -> Presence {
        match text.trim().to_ascii_lowercase().as_str() {
            "present" | "yes" | "true" | "exists" => Presence::Present,
            "missing" | "absent" | "no" | "false" => Presence::Missing,
            _ => Presence::Unknown,
        }
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the store's `images` table: where an image ref was found (or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageAvailability {
    /// The image ref, normalised with [`normalize_ref`].
    pub image_ref: String,
    /// In the local Docker daemon.
    pub local: Presence,
    /// In its registry.
    pub registry: Presence,
    pub digest: Option<String>,
    /// Who said so: `registry` (a live check), `import:<name>` (an imported listing)…
    pub source: String,
    pub checked_at: String,
}

impl ImageAvailability {
    /// Present anywhere wins; missing only when no place has it and at least one said missing.
    pub fn presence(&self) -> Presence {
        match (self.local, self.registry) {
            (Presence::Present, _) | (_, Presence::Present) => Presence::Present,
            (Presence::Missing, _) | (_, Presence::Missing) => Presence::Missing,
            _ => Presence::Unknown,
        }
    }
}

/// A complete listing of one registry repository's tags (e.g. the registry API's `tags/list`):
/// a ref of that repository that the listing does not name is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageListing {
    /// The repository, normalised (`host/org/name` or `org/name`).
    pub repository: String,
    pub source: String,
    pub listed_at: String,
    pub n_tags: usize,
}

/// What is known about one image ref, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageState {
    pub image_ref: String,
    pub presence: Presence,
    /// The row's or the listing's source; `None` when nothing is known.
    pub source: Option<String>,
}

/// Availability rows and listings, indexed for lookups.
#[derive(Debug, Clone, Default)]
pub struct ImageIndex {
    rows: BTreeMap<String, ImageAvailability>,
    listed: BTreeMap<String, String>,
}

impl ImageIndex {
    pub fn new(rows: &[ImageAvailability], listings: &[ImageListing]) -> ImageIndex {
        ImageIndex {
            rows: rows
                .iter()
                .map(|row| (normalize_ref(&row.image_ref), row.clone()))
                .collect(),
            listed: listings
                .iter()
                .map(|l| (normalize_ref(&l.repository), l.source.clone()))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.listed.is_empty()
    }

    /// The distinct sources of the rows and listings (for "where this came from" lines).
    pub fn sources(&self) -> BTreeSet<String> {
        self.rows
            .values()
            .map(|r| r.source.clone())
            .chain(self.listed.values().cloned())
            .collect()
    }

    /// The state of one ref: its row if there is one; else missing when its repository was
    /// listed completely; else unknown.
    pub fn state(&self, image_ref: &str) -> ImageState {
        let normalized = normalize_ref(image_ref);
        if let Some(row) = self.rows.get(&normalized) {
            return ImageState {
                image_ref: normalized,
                presence: row.presence(),
                source: Some(row.source.clone()),
            };
        }
        let (repository, _) = split_ref(&normalized);
        if let Some(source) = self.listed.get(repository) {
            return ImageState {
                image_ref: normalized,
                presence: Presence::Missing,
                source: Some(source.clone()),
            };
        }
        ImageState {
            image_ref: normalized,
            presence: Presence::Unknown,
            source: None,
        }
    }
}

/// A ref in one canonical spelling: Docker Hub's implicit host and `library/` dropped, so that
/// `docker.io/library/ubuntu:22.04` and `ubuntu:22.04` are the same image.
pub fn normalize_ref(image_ref: &str) -> String {
    let mut text = image_ref.trim();
    for host in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = text.strip_prefix(host) {
            text = rest;
            break;
        }
    }
    text.strip_prefix("library/").unwrap_or(text).to_string()
}

/// Splits a ref into its repository and its tag or digest (`None` when it has neither).
pub fn split_ref(image_ref: &str) -> (&str, Option<&str>) {
    if let Some((repository, digest)) = image_ref.split_once('@') {
        return (repository, Some(digest));
    }
    let last_slash = image_ref.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image_ref[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (&image_ref[..at], Some(&image_ref[at + 1..]))
        }
        None => (image_ref, None),
    }
}

/// The tags of one registry repository, as a listing file gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryListing {
    /// Normalised repository (`host/org/name` or `org/name`).
    pub repository: String,
    /// Tags (or `sha256:` digests) in file order, without duplicates.
    pub tags: Vec<String>,
}

impl RepositoryListing {
    /// The normalised refs of the listing.
    pub fn refs(&self) -> impl Iterator<Item = String> + '_ {
        self.tags.iter().map(|tag| {
            let separator = if tag.starts_with("sha256:") { '@' } else { ':' };
            format!("{}{separator}{tag}", self.repository)
        })
    }
}

/// A listing file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ListingError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Reads what registry repositories hold: the registry API's `tags/list` answer
/// (`{"name": "org/x", "tags": ["a", "b"]}`, or an array of those), or a plain text list of
/// refs, one per line (`#` starts a comment). `registry` (a host such as `ghcr.io`) is put in
/// front of `tags/list` names, which the API gives without their host.
pub fn read_listing(
    file: &str,
    text: &str,
    registry: Option<&str>,
) -> Result<Vec<RepositoryListing>, ListingError> {
    let err = |line: Option<usize>, message: String| ListingError {
        file: file.to_string(),
        line,
        message,
    };
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    let mut by_repo: Vec<RepositoryListing> = Vec::new();
    let mut add = |repository: &str, tag: Option<&str>| {
        let index = match by_repo.iter().position(|l| l.repository == repository) {
            Some(index) => index,
            None => {
                by_repo.push(RepositoryListing {
                    repository: repository.to_string(),
                    tags: Vec::new(),
                });
                by_repo.len() - 1
            }
        };
        if let Some(tag) = tag
            && !by_repo[index].tags.iter().any(|t| t == tag)
        {
            by_repo[index].tags.push(tag.to_string());
        }
    };
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
            err(
                Some(e.line()),
                format!("invalid JSON: {e} (expected the registry's tags/list answer)"),
            )
        })?;
        let items = match value {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        };
        for (idx, item) in items.iter().enumerate() {
            let at = |message: &str| err(None, format!("entry {}: {message}", idx + 1));
            let name = item
                .get("name")
                .and_then(|n| n.as_str())
                .ok_or_else(|| at("missing `name` (expected {\"name\": …, \"tags\": […]})"))?;
            let tags = match item.get("tags") {
                Some(serde_json::Value::Array(tags)) => tags.clone(),
                // The registry answers `"tags": null` for a repository without tags.
                Some(serde_json::Value::Null) | None => Vec::new(),
                Some(_) => return Err(at("`tags` must be an array of strings")),
            };
            let name = name.trim().trim_matches('/');
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(at(&format!("`{name}` is not a repository name")));
            }
            let repository = match registry
                .map(|r| r.trim().trim_end_matches('/'))
                .filter(|r| !r.is_empty())
            {
                Some(host) => normalize_ref(&format!("{host}/{name}")),
                None => normalize_ref(name),
            };
            add(&repository, None);
            for tag in tags {
                let tag = tag
                    .as_str()
                    .ok_or_else(|| at("`tags` must be an array of strings"))?
                    .trim();
                if tag.is_empty() || tag.contains('/') {
                    return Err(at(&format!("`{tag}` is not a tag")));
                }
                add(&repository, Some(tag));
            }
        }
        return Ok(by_repo);
    }
    for (idx, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.contains(char::is_whitespace) {
            return Err(err(
                Some(idx + 1),
                format!("`{line}` is not an image ref (one ref per line)"),
            ));
        }
        let normalized = normalize_ref(line);
        match split_ref(&normalized) {
            (repository, Some(tag)) if !repository.is_empty() && !tag.is_empty() => {
                add(repository, Some(tag))
            }
            _ => {
                return Err(err(
                    Some(idx + 1),
                    format!("`{line}` has no tag: expected repository:tag or repository@sha256:…"),
                ));
            }
        }
    }
    Ok(by_repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_from_tags_list_and_text() {
        let json = r#"{"name": "org/vllm-baseline", "tags": ["733e7c9e95f5", "abc", "abc"]}"#;
        let listing = read_listing("tags.json", json, None).unwrap();
        assert_eq!(
            listing,
            vec![RepositoryListing {
                repository: "org/vllm-baseline".into(),
                tags: vec!["733e7c9e95f5".into(), "abc".into()]
            }]
        );
        assert_eq!(
            listing[0].refs().collect::<Vec<_>>(),
            ["org/vllm-baseline:733e7c9e95f5", "org/vllm-baseline:abc"]
        );
        let hosted = read_listing(
            "tags.json",
            r#"[{"name": "vllm", "tags": null}]"#,
            Some("localhost:5000/"),
        )
        .unwrap();
        assert_eq!(hosted[0].repository, "localhost:5000/vllm");
        assert!(hosted[0].tags.is_empty());
        let text = "# what the registry has\ndocker.io/org/vllm:1111 \norg/vllm:2222\nreg:5000/x@sha256:00\n\n";
        let listing = read_listing("refs.txt", text, None).unwrap();
        assert_eq!(listing.len(), 2);
        assert_eq!(listing[0].tags, vec!["1111", "2222"]);
        assert_eq!(
            listing[1].refs().collect::<Vec<_>>(),
            ["reg:5000/x@sha256:00"]
        );
        let bad = read_listing("refs.txt", "org/vllm:1\norg/vllm\n", None).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "refs.txt:2: `org/vllm` has no tag: expected repository:tag or repository@sha256:…"
        );
        assert!(
            read_listing("t.json", r#"{"tags": []}"#, None)
                .unwrap_err()
                .to_string()
                .contains("missing `name`")
        );
        assert!(read_listing("t.json", r#"{"name": "x", "tags": [1]}"#, None).is_err());
    }

    fn row(image_ref: &str, local: Presence, registry: Presence) -> ImageAvailability {
        ImageAvailability {
            image_ref: image_ref.into(),
            local,
            registry,
            digest: None,
            source: "registry".into(),
            checked_at: "t".into(),
        }
    }

    #[test]
    fn refs_split_and_normalise() {
        assert_eq!(
            split_ref("localhost:5000/vllm:abc"),
            ("localhost:5000/vllm", Some("abc"))
        );
        assert_eq!(
            split_ref("localhost:5000/vllm"),
            ("localhost:5000/vllm", None)
        );
        assert_eq!(split_ref("org/x@sha256:00"), ("org/x", Some("sha256:00")));
        assert_eq!(
            normalize_ref(" docker.io/library/ubuntu:22.04 "),
            "ubuntu:22.04"
        );
        assert_eq!(normalize_ref("docker.io/org/vllm:1"), "org/vllm:1");
        assert_eq!(
            normalize_ref("reg:5000/library/x:1"),
            "reg:5000/library/x:1"
        );
    }

    #[test]
    fn rows_then_listings_then_unknown() {
        let listing = ImageListing {
            repository: "org/base".into(),
            source: "import:tags.json".into(),
            listed_at: "t".into(),
            n_tags: 1,
        };
        let index = ImageIndex::new(
            &[
                row("org/base:aaa", Presence::Unknown, Presence::Present),
                row("org/human:bbb", Presence::Missing, Presence::Unknown),
            ],
            &[listing],
        );
        assert_eq!(
            index.state("docker.io/org/base:aaa").presence,
            Presence::Present
        );
        assert_eq!(index.state("org/human:bbb").presence, Presence::Missing);
        let listed_missing = index.state("org/base:ccc");
        assert_eq!(
            (listed_missing.presence, listed_missing.source.as_deref()),
            (Presence::Missing, Some("import:tags.json"))
        );
        assert_eq!(index.state("org/other:1").presence, Presence::Unknown);
        assert_eq!(Presence::from_column("present"), Presence::Present);
        assert_eq!(Presence::from_column("whatever"), Presence::Unknown);
    }
}
