//! The OCI distribution API, just what perfarena needs: whether a manifest exists (`HEAD
//! /v2/<repository>/manifests/<reference>`) and its digest.
//!
//! Written on `ureq` (already a dependency, blocking, small) rather than `oci-client`: a HEAD
//! with the right `Accept` list and the two auth challenges (Basic, Bearer token) are ~150 lines,
//! while `oci-client` would bring an async HTTP stack (reqwest) to do the same.
//!
//! A registry that does not answer, or refuses us, is `Unknown`, never `Missing`: only a 404 for
//! the manifest means missing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;

use super::Availability;
use super::auth::{CredentialSource, Credentials};
use super::reference::ImageName;

/// Every manifest kind we accept. Without the Docker v2 types a registry converts a Docker
/// image's manifest to schema 1 (another digest); without the OCI ones it 404s an OCI image.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

pub struct RegistryClient {
    agent: ureq::Agent,
    credentials: CredentialSource,
    /// Registries spoken to over plain HTTP besides loopback ones (`--registry http://…`,
    /// `PERFARENA_INSECURE_REGISTRIES`).
    insecure: Vec<String>,
    /// Bearer tokens by (host, scope), reused within one command.
    tokens: Mutex<HashMap<(String, String), String>>,
}

impl RegistryClient {
    pub fn new(
        credentials: CredentialSource,
        insecure: Vec<String>,
        timeout: Duration,
    ) -> RegistryClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(3)
            .build()
            .into();
        let mut insecure = insecure;
        if let Ok(extra) = std::env::var("PERFARENA_INSECURE_REGISTRIES") {
            insecure.extend(
                extra
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        RegistryClient {
            agent,
            credentials,
            insecure,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn base_url(&self, name: &ImageName) -> String {
        let plain = name.is_loopback() || self.insecure.iter().any(|h| h == &name.registry);
        format!(
            "{}://{}",
            if plain { "http" } else { "https" },
            name.api_host()
        )
    }

    /// Whether the registry holds `name`'s manifest, with its digest.
    pub fn manifest(&self, name: &ImageName) -> Availability {
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base_url(name),
            name.repository,
            name.manifest_reference()
        );
        let scope = format!("repository:{}:pull", name.repository);
        let cached = self
            .tokens
            .lock()
            .ok()
            .and_then(|t| t.get(&(name.registry.clone(), scope.clone())).cloned());
        let mut auth_header = cached.map(|t| format!("Bearer {t}"));
        for _ in 0..2 {
            let mut request = self.agent.head(&url).header("Accept", MANIFEST_ACCEPT);
            if let Some(value) = &auth_header {
                request = request.header("Authorization", value);
            }
            let response = match request.call() {
                Ok(response) => response,
                Err(err) => {
                    return Availability::Unknown {
                        reason: format!("{url}: {err}"),
                    };
                }
            };
            match response.status().as_u16() {
                200 => {
                    let digest = response
                        .headers()
                        .get("docker-content-digest")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from);
                    return Availability::Present { digest };
                }
                404 => return Availability::Missing,
                401 if auth_header.is_none() => {
                    let challenge = response
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    match self.authorize(name, &challenge, &scope) {
                        Ok(header) => auth_header = Some(header),
                        Err(reason) => {
                            return Availability::Unknown {
                                reason: format!("{url}: {reason}"),
                            };
                        }
                    }
                }
                401 | 403 => {
                    return Availability::Unknown {
                        reason: format!(
                            "{url}: the registry refused access (HTTP {}); check the credentials (docker login)",
                            response.status().as_u16()
                        ),
                    };
                }
                code => {
                    return Availability::Unknown {
                        reason: format!("{url}: HTTP {code}"),
                    };
                }
            }
        }
        Availability::Unknown {
            reason: format!("{url}: still unauthorized after authenticating"),
        }
    }

    /// Answers a `WWW-Authenticate` challenge: the `Authorization` header value to retry with.
    fn authorize(&self, name: &ImageName, challenge: &str, scope: &str) -> Result<String, String> {
        let (scheme, params) = parse_challenge(challenge);
        let credentials = self.credentials.lookup(name.auth_key());
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => match credentials {
                Some(Credentials::Basic { username, password }) => Ok(basic(&username, &password)),
                _ => Err("the registry wants a username and password: `docker login` or set PERFARENA_REGISTRY_USERNAME/PASSWORD".into()),
            },
            "bearer" => {
                let realm = params.get("realm").ok_or("a Bearer challenge without a realm")?;
                let scope = params.get("scope").map(String::as_str).unwrap_or(scope);
                let service = params.get("service").map(String::as_str).unwrap_or("");
                let token = self.fetch_token(realm, service, scope, credentials.as_ref())?;
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.insert((name.registry.clone(), scope.to_string()), token.clone());
                }
                Ok(format!("Bearer {token}"))
            }
            _ => Err(format!("unsupported auth challenge {challenge:?}")),
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: &str,
        scope: &str,
        credentials: Option<&Credentials>,
    ) -> Result<String, String> {
        let response = match credentials {
            Some(Credentials::IdentityToken(refresh)) => self.agent.post(realm).send_form([
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("service", service),
                ("scope", scope),
                ("client_id", "perfarena"),
            ]),
            Some(Credentials::Basic { username, password }) => self
                .agent
                .get(realm)
                .query("service", service)
                .query("scope", scope)
                .header("Authorization", basic(username, password))
                .call(),
            None => self
                .agent
                .get(realm)
                .query("service", service)
                .query("scope", scope)
                .call(),
        };
        let mut response = response.map_err(|e| format!("token endpoint {realm}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "token endpoint {realm}: HTTP {}",
                response.status().as_u16()
            ));
        }
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("token endpoint {realm}: {e}"))?;
        let json: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("token endpoint {realm}: {e}"))?;
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(|t| t.as_str())
            .map(String::from)
            .ok_or_else(|| format!("token endpoint {realm}: no token in the reply"))
    }
}

fn basic(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// `Bearer realm="…",service="…",scope="repository:a:pull,push"` → ("Bearer", params).
fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.insert(key.to_ascii_lowercase(), value);
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_commas_in_quotes() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(params["realm"], "https://auth.example/token");
        assert_eq!(params["service"], "registry.example");
        assert_eq!(params["scope"], "repository:a/b:pull,push");
        let (scheme, params) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            (scheme.as_str(), params["realm"].as_str()),
            ("Basic", "Registry Realm")
        );
    }

    #[test]
    fn a_registry_that_does_not_answer_is_unknown_not_missing() {
        // Port 9 on loopback: nothing listens (the discard port is not served here).
        let client = RegistryClient::new(CredentialSource::none(), vec![], Duration::from_secs(2));
        let name = ImageName::parse("127.0.0.1:9/nothing:here").unwrap();
        match client.manifest(&name) {
            Availability::Unknown { reason } => assert!(reason.contains("127.0.0.1:9"), "{reason}"),
            other => panic!("expected unknown, got {other:?}"),
        }
    }
}
