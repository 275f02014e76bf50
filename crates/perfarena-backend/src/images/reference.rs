//! Image references split as Docker splits them: `[registry/]repository[:tag][@digest]`, where
//! the first component is a registry only if it has a `.` or a `:` or is `localhost`; otherwise
//! the image lives on Docker Hub (`docker.io`, single names under `library/`).

use super::ImagesError;

pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's distribution API answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// `127.0.0.1:5000`, `ghcr.io`, `docker.io`.
    pub registry: String,
    /// `toyllm`, `library/python`, `org/vllm`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageName {
    pub fn parse(reference: &str) -> Result<ImageName, ImagesError> {
        let bad = |message: &str| ImagesError::Reference {
            reference: reference.to_string(),
            message: message.to_string(),
        };
        let text = reference.trim();
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if text.contains("://") {
            return Err(bad(
                "an image reference has no scheme: write `host:port/repo:tag`",
            ));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.to_string())),
            None => (text, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), rest.to_string()),
        };
        // The tag is after the last `:` of the last path component (a registry port is not in `path`).
        let last_slash = path.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (
                path[..last_slash + i].to_string(),
                Some(path[last_slash + i + 1..].to_string()),
            ),
            None => (path.clone(), None),
        };
        if repository.is_empty() {
            return Err(bad("no repository name"));
        }
        let valid_repo = repository.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        });
        if !valid_repo {
            return Err(bad(
                "repository names are lowercase letters, digits and `._-`, separated by `/`",
            ));
        }
        if let Some(tag) = &tag {
            let valid_tag = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !tag.starts_with(['.', '-']);
            if !valid_tag {
                return Err(bad(
                    "a tag is up to 128 letters, digits and `._-`, not starting with `.` or `-`",
                ));
            }
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        Ok(ImageName {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What the manifest is asked by: the digest if there is one, else the tag (`latest` if none).
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The tag (`latest` when none is written).
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// The name without tag, as `docker push` takes it (`127.0.0.1:5000/toyllm`).
    pub fn repository_with_registry(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host the distribution API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The key credentials are stored under in a docker config (`https://index.docker.io/v1/`
    /// for Docker Hub, the host otherwise).
    pub fn auth_key(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "https://index.docker.io/v1/"
        } else {
            &self.registry
        }
    }

    /// Whether the registry is on this host (plain HTTP, like dockerd's default insecure range).
    pub fn is_loopback(&self) -> bool {
        let host = host_of(&self.registry);
        host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.")
    }
}

/// `host:port` → `host` (IPv6 in brackets kept).
fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry
            .split(']')
            .next()
            .map(|h| &registry[..h.len() + 1])
            .unwrap_or(registry);
    }
    registry
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reference: &str, registry: &str, repository: &str, tag: Option<&str>) {
        let name = ImageName::parse(reference).unwrap();
        assert_eq!(
            (
                name.registry.as_str(),
                name.repository.as_str(),
                name.tag.as_deref()
            ),
            (registry, repository, tag),
            "{reference}"
        );
    }

    #[test]
    fn references_split_like_docker() {
        check(
            "127.0.0.1:5000/toyllm:baseline-abc",
            "127.0.0.1:5000",
            "toyllm",
            Some("baseline-abc"),
        );
        check("localhost/a/b", "localhost", "a/b", None);
        check("python:3.12", "docker.io", "library/python", Some("3.12"));
        check(
            "org/vllm:35fad35a",
            "docker.io",
            "org/vllm",
            Some("35fad35a"),
        );
        check("ghcr.io/org/img", "ghcr.io", "org/img", None);
        let name = ImageName::parse("reg.example:443/x@sha256:abcd").unwrap();
        assert_eq!(name.manifest_reference(), "sha256:abcd");
        assert_eq!(
            ImageName::parse("x").unwrap().manifest_reference(),
            "latest"
        );
        assert_eq!(
            ImageName::parse("x").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        assert!(
            ImageName::parse("127.0.0.1:5000/a:b")
                .unwrap()
                .is_loopback()
        );
        assert!(
            ImageName::parse("localhost:5000/a:b")
                .unwrap()
                .is_loopback()
        );
        assert!(
            !ImageName::parse("registry.example:5000/a:b")
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "",
            "http://reg/a:b",
            "Reg.example/UPPER:tag",
            "reg.example/a:-x",
            "reg.example/:tag",
        ] {
            assert!(ImageName::parse(bad).is_err(), "{bad}");
        }
    }
}
