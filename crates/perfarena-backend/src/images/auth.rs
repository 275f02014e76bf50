//! Registry credentials, found the way the docker CLI finds them: the environment first
//! (`PERFARENA_REGISTRY_USERNAME` / `PERFARENA_REGISTRY_PASSWORD`), then the docker config
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`): a per-registry credential helper
//! (`credHelpers`), the default store (`credsStore`) or an inline `auths` entry.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth refresh token (docker config `identitytoken`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

impl Credentials {
    /// For bollard (push, pull through the engine).
    pub fn to_docker(&self, server: &str) -> bollard::auth::DockerCredentials {
        match self {
            Credentials::Basic { username, password } => bollard::auth::DockerCredentials {
                username: Some(username.clone()),
                password: Some(password.clone()),
                serveraddress: Some(server.to_string()),
                ..Default::default()
            },
            Credentials::IdentityToken(token) => bollard::auth::DockerCredentials {
                identitytoken: Some(token.clone()),
                serveraddress: Some(server.to_string()),
                ..Default::default()
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Where credentials come from; built once per command.
#[derive(Debug, Default)]
pub struct CredentialSource {
    env: Option<Credentials>,
    config: DockerConfig,
}

impl CredentialSource {
    /// Reads the environment and the docker config (a missing or unreadable config means none).
    pub fn from_environment() -> CredentialSource {
        let env = match (
            std::env::var("PERFARENA_REGISTRY_USERNAME"),
            std::env::var("PERFARENA_REGISTRY_PASSWORD"),
        ) {
            (Ok(username), Ok(password)) if !username.is_empty() => {
                Some(Credentials::Basic { username, password })
            }
            _ => None,
        };
        let config = config_path()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        CredentialSource { env, config }
    }

    /// No credentials at all (tests, anonymous registries).
    pub fn none() -> CredentialSource {
        CredentialSource::default()
    }

    /// Credentials for `auth_key` (a registry host, or Docker Hub's index URL).
    pub fn lookup(&self, auth_key: &str) -> Option<Credentials> {
        if let Some(env) = &self.env {
            return Some(env.clone());
        }
        let keys = key_variants(auth_key);
        for key in &keys {
            if let Some(helper) = self.config.cred_helpers.get(key) {
                return run_helper(helper, key);
            }
        }
        for key in &keys {
            if let Some(found) = self.config.auths.get(key).and_then(from_entry) {
                return Some(found);
            }
        }
        self.config
            .creds_store
            .as_deref()
            .and_then(|store| run_helper(store, auth_key))
    }
}

fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// Docker configs spell a registry several ways: `host`, `https://host`, `http://host`.
fn key_variants(auth_key: &str) -> Vec<String> {
    if auth_key.contains("://") {
        return vec![auth_key.to_string()];
    }
    vec![
        auth_key.to_string(),
        format!("https://{auth_key}"),
        format!("http://{auth_key}"),
    ]
}

fn from_entry(entry: &AuthEntry) -> Option<Credentials> {
    if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Some(Credentials::IdentityToken(token.clone()));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Some(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_ref()?.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Credentials::Basic {
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// The docker credential-helper protocol: `docker-credential-<name> get`, the server on stdin,
/// `{"Username", "Secret"}` on stdout. A helper that fails means no credentials.
fn run_helper(name: &str, server: &str) -> Option<Credentials> {
    let mut child = Command::new(format!("docker-credential-{name}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(server.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        return None;
    }
    let reply: HelperReply = serde_json::from_slice(&output.stdout).ok()?;
    if reply.username == "<token>" {
        return Some(Credentials::IdentityToken(reply.secret));
    }
    Some(Credentials::Basic {
        username: reply.username,
        password: reply.secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_auths_decode() {
        let config: DockerConfig = serde_json::from_str(
            r#"{"auths": {"https://reg.example": {"auth": "dXNlcjpwYXNzOndvcmQ="}, "tok.example": {"identitytoken": "t0k"}}}"#,
        )
        .unwrap();
        let source = CredentialSource { env: None, config };
        assert_eq!(
            source.lookup("reg.example"),
            Some(Credentials::Basic {
                username: "user".into(),
                password: "pass:word".into()
            })
        );
        assert_eq!(
            source.lookup("tok.example"),
            Some(Credentials::IdentityToken("t0k".into()))
        );
        assert_eq!(source.lookup("other.example"), None);
    }

    #[test]
    fn a_missing_helper_means_no_credentials() {
        let config: DockerConfig =
            serde_json::from_str(r#"{"credsStore": "perfarena-test-no-such-helper"}"#).unwrap();
        assert_eq!(
            CredentialSource { env: None, config }.lookup("reg.example"),
            None
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let creds = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
