//! The metrics perfarena measures itself on every attempt, with no wrapper and no parser: the
//! client's wall-clock time, the CPU time and peak memory of what it ran, and the server's
//! lifetime. They are samples like any parsed metric (usable as `metric.primary`, shown in
//! reports); their direction is known (lower is better), so a suite or `compare` need not say it.
//!
//! What each backend counts is in `docs/suite.md` ("Built-in metrics").

use crate::stats::Direction;

/// The client's wall-clock time, from its start to its exit, in seconds.
pub const WALL_S: &str = "wall_s";
/// CPU time in user mode of the measured processes, in seconds.
pub const USER_S: &str = "user_s";
/// CPU time in the kernel on behalf of the measured processes, in seconds.
pub const SYS_S: &str = "sys_s";
/// The peak resident memory of the measured processes, in MiB (2^20 bytes).
pub const MAX_RSS_MB: &str = "max_rss_mb";
/// The prefix of the server's own metrics (`server_wall_s`: its lifetime…).
pub const SERVER_PREFIX: &str = "server_";

/// Every built-in metric name, client first, then the server's.
pub const NAMES: [&str; 8] = [
    WALL_S,
    USER_S,
    SYS_S,
    MAX_RSS_MB,
    "server_wall_s",
    "server_user_s",
    "server_sys_s",
    "server_max_rss_mb",
];

/// Whether `metric` is one perfarena measures itself.
pub fn is_builtin(metric: &str) -> bool {
    NAMES.contains(&metric)
}

/// The direction of a built-in metric (all are costs: lower is better); `None` for any other.
pub fn direction(metric: &str) -> Option<Direction> {
    is_builtin(metric).then_some(Direction::Lower)
}

/// What one process tree used: wall-clock time always, the rest where the backend can tell.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    pub wall_s: f64,
    pub user_s: Option<f64>,
    pub sys_s: Option<f64>,
    pub max_rss_mb: Option<f64>,
}

impl Usage {
    /// The samples of this usage, each name prefixed by `prefix` (empty for the client).
    fn samples(&self, prefix: &str, out: &mut Vec<(String, f64)>) {
        let values = [
            (WALL_S, Some(self.wall_s)),
            (USER_S, self.user_s),
            (SYS_S, self.sys_s),
            (MAX_RSS_MB, self.max_rss_mb),
        ];
        for (name, value) in values {
            if let Some(value) = value.filter(|v| v.is_finite() && *v >= 0.0) {
                out.push((format!("{prefix}{name}"), value));
            }
        }
    }
}

/// The built-in measurements of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BuiltinMetrics {
    /// The client (on Docker: its wall-clock time, and the container's CPU and memory).
    pub client: Option<Usage>,
    /// The server, over its whole lifetime (start to stop).
    pub server: Option<Usage>,
}

impl BuiltinMetrics {
    /// The samples, named as in [`NAMES`].
    pub fn samples(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Some(client) = &self.client {
            client.samples("", &mut out);
        }
        if let Some(server) = &self.server {
            server.samples(SERVER_PREFIX, &mut out);
        }
        out
    }

    /// Adds these samples to `samples` where a metric of the same name is not there already
    /// (a parsed metric the user named `wall_s` is theirs). Returns the names left out.
    pub fn merge_into(&self, samples: &mut Vec<(String, f64)>) -> Vec<String> {
        let mut shadowed = Vec::new();
        for (name, value) in self.samples() {
            if samples.iter().any(|(existing, _)| existing == &name) {
                shadowed.push(name);
            } else {
                samples.push((name, value));
            }
        }
        shadowed
    }
}

/// Kibibytes (what `getrusage` reports on Linux) as MiB.
pub fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Bytes (what cgroups report) as MiB.
pub fn bytes_to_mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_name_the_client_plainly_and_prefix_the_server() {
        let metrics = BuiltinMetrics {
            client: Some(Usage {
                wall_s: 1.5,
                user_s: Some(1.0),
                sys_s: Some(0.25),
                max_rss_mb: Some(12.0),
            }),
            server: Some(Usage {
                wall_s: 3.0,
                user_s: None,
                sys_s: None,
                max_rss_mb: Some(f64::NAN),
            }),
        };
        assert_eq!(
            metrics.samples(),
            vec![
                ("wall_s".to_string(), 1.5),
                ("user_s".to_string(), 1.0),
                ("sys_s".to_string(), 0.25),
                ("max_rss_mb".to_string(), 12.0),
                ("server_wall_s".to_string(), 3.0),
            ]
        );
        for (name, _) in metrics.samples() {
            assert!(is_builtin(&name), "{name}");
        }
    }

    #[test]
    fn a_parsed_metric_of_the_same_name_wins() {
        let metrics = BuiltinMetrics {
            client: Some(Usage {
                wall_s: 2.0,
                ..Usage::default()
            }),
            server: None,
        };
        let mut samples = vec![("wall_s".to_string(), 9.0), ("tok_s".to_string(), 5.0)];
        assert_eq!(metrics.merge_into(&mut samples), vec!["wall_s".to_string()]);
        assert_eq!(samples[0], ("wall_s".to_string(), 9.0));
        let mut empty = Vec::new();
        assert!(metrics.merge_into(&mut empty).is_empty());
        assert_eq!(empty, vec![("wall_s".to_string(), 2.0)]);
    }

    #[test]
    fn directions_are_known_for_builtins_only() {
        assert_eq!(direction("wall_s"), Some(Direction::Lower));
        assert_eq!(direction("server_max_rss_mb"), Some(Direction::Lower));
        assert_eq!(direction("output_throughput_tok_s"), None);
        assert_eq!(direction("wall"), None);
        assert_eq!(kib_to_mib(2048), 2.0);
        assert_eq!(bytes_to_mib(3 * 1024 * 1024), 3.0);
    }
}
