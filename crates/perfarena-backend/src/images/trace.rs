//! BuildKit's progress as text. A BuildKit build streams its progress as `StatusResponse`
//! messages (base64 protobuf in the engine's `moby.buildkit.trace` lines: vertexes — the steps —
//! with their start, end, cache hit or error, their logs as byte chunks, and transfer statuses).
//! [`TraceText`] turns them into the lines `docker build --progress=plain` prints:
//!
//! ```text
//! #5 [build 2/3] RUN make
//! #5 0.412 compiling kernels
//! #5 DONE 1.3s
//! #6 [stage-1 2/2] COPY --from=build /out /out
//! #6 CACHED
//! #7 ERROR: executor failed running [/bin/sh -c exit 3]: exit code: 3
//! ```
//!
//! so that build logs read as before and the failure signatures (`exit code: 137`, `Killed
//! signal terminated program`, …) still match. Pure: the engine converts bollard's messages into
//! the plain structs here.

use std::collections::{HashMap, HashSet};

/// A step (vertex) of the build, as one update reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceVertex {
    pub digest: String,
    /// e.g. `[stage-0 2/3] RUN make`, `[internal] load build definition from Dockerfile`.
    pub name: String,
    pub cached: bool,
    /// Seconds since the epoch.
    pub started: Option<f64>,
    pub completed: Option<f64>,
    /// Empty: no error.
    pub error: String,
}

/// Progress of a transfer or export inside a step (`transferring context: 2.1kB`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceStatus {
    pub id: String,
    pub vertex: String,
    pub current: i64,
    pub total: i64,
    pub completed: bool,
}

/// A chunk of a step's output (not necessarily whole lines).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceLog {
    pub vertex: String,
    /// Seconds since the epoch.
    pub time: Option<f64>,
    pub msg: Vec<u8>,
}

/// A warning about a step (newer engines).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceWarning {
    pub vertex: String,
    pub short: String,
}

/// One `StatusResponse`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceUpdate {
    pub vertexes: Vec<TraceVertex>,
    pub statuses: Vec<TraceStatus>,
    pub logs: Vec<TraceLog>,
    pub warnings: Vec<TraceWarning>,
}

#[derive(Debug, Default)]
struct VertexState {
    index: usize,
    name: String,
    started: Option<f64>,
    announced: bool,
    finished: bool,
    /// Output after the last newline, printed when the rest of its line comes (or at the end).
    partial: String,
    statuses_done: HashSet<String>,
}

/// Turns a build's updates into lines, as they come.
#[derive(Debug, Default)]
pub struct TraceText {
    vertices: HashMap<String, VertexState>,
    next_index: usize,
}

impl TraceText {
    pub fn new() -> TraceText {
        TraceText::default()
    }

    /// The lines `update` adds (no trailing newlines, none empty).
    pub fn push(&mut self, update: &TraceUpdate) -> Vec<String> {
        let mut out = Vec::new();
        // A vertex's last logs may come in the update that completes it: its DONE waits for them.
        for vertex in &update.vertexes {
            let state = self.state(&vertex.digest);
            if !vertex.name.is_empty() {
                state.name = vertex.name.clone();
            }
            if vertex.started.is_some() {
                state.started = vertex.started;
            }
            if vertex.started.is_some() || vertex.cached || !vertex.error.is_empty() {
                announce(state, &mut out);
            }
            // A cache hit runs nothing: no logs to wait for.
            if vertex.cached && vertex.error.is_empty() && !state.finished {
                out.push(format!("#{} CACHED", state.index));
                state.finished = true;
            }
        }
        for status in &update.statuses {
            if !status.completed || !self.vertices.contains_key(&status.vertex) {
                continue;
            }
            let state = self.state(&status.vertex);
            if !state.statuses_done.insert(status.id.clone()) {
                continue;
            }
            announce(state, &mut out);
            let size = match (status.current, status.total) {
                (current, total) if total > 0 => {
                    format!(" {} / {}", human_size(current), human_size(total))
                }
                (current, _) if current > 0 => format!(" {}", human_size(current)),
                _ => String::new(),
            };
            out.push(format!("#{} {}{size} done", state.index, status.id));
        }
        for log in &update.logs {
            let state = self.state(&log.vertex);
            announce(state, &mut out);
            let offset = match (log.time, state.started) {
                (Some(time), Some(started)) => format!("{:.3} ", (time - started).max(0.0)),
                _ => String::new(),
            };
            state.partial.push_str(&String::from_utf8_lossy(&log.msg));
            while let Some(idx) = state.partial.find('\n') {
                let line: String = state.partial.drain(..=idx).collect();
                if let Some(text) = visible(&line) {
                    out.push(format!("#{} {offset}{text}", state.index));
                }
            }
        }
        for warning in &update.warnings {
            let state = self.state(&warning.vertex);
            announce(state, &mut out);
            out.push(format!("#{} WARN: {}", state.index, warning.short.trim()));
        }
        for vertex in &update.vertexes {
            let state = self.state(&vertex.digest);
            if state.finished {
                continue;
            }
            let end = if !vertex.error.is_empty() {
                if vertex.error.ends_with("context canceled") {
                    Some("CANCELED".to_string())
                } else {
                    Some(format!("ERROR: {}", vertex.error))
                }
            } else if vertex.cached {
                Some("CACHED".to_string())
            } else {
                vertex.completed.map(|completed| {
                    let took = state
                        .started
                        .map(|started| (completed - started).max(0.0))
                        .unwrap_or(0.0);
                    format!("DONE {took:.1}s")
                })
            };
            if let Some(end) = end {
                announce(state, &mut out);
                flush(state, &mut out);
                out.push(format!("#{} {end}", state.index));
                state.finished = true;
            }
        }
        out
    }

    /// What is left: output without a final newline.
    pub fn finish(&mut self) -> Vec<String> {
        let mut states: Vec<&mut VertexState> = self.vertices.values_mut().collect();
        states.sort_by_key(|s| s.index);
        let mut out = Vec::new();
        for state in states {
            flush(state, &mut out);
        }
        out
    }

    fn state(&mut self, digest: &str) -> &mut VertexState {
        let next = &mut self.next_index;
        self.vertices.entry(digest.to_string()).or_insert_with(|| {
            *next += 1;
            VertexState {
                index: *next,
                name: digest.to_string(),
                ..Default::default()
            }
        })
    }
}

fn announce(state: &mut VertexState, out: &mut Vec<String>) {
    if !state.announced {
        state.announced = true;
        out.push(format!("#{} {}", state.index, state.name));
    }
}

fn flush(state: &mut VertexState, out: &mut Vec<String>) {
    let rest = std::mem::take(&mut state.partial);
    if let Some(text) = visible(&rest) {
        out.push(format!("#{} {text}", state.index));
    }
}

/// A line of output as a terminal would leave it: what follows the last carriage return
/// (progress bars redraw with `\r`), trailing whitespace trimmed; `None` when empty.
fn visible(line: &str) -> Option<String> {
    let line = line.trim_end_matches(['\n', '\r']);
    let line = line
        .rsplit('\r')
        .find(|s| !s.trim().is_empty())
        .unwrap_or("");
    let line = line.trim_end();
    (!line.is_empty()).then(|| line.to_string())
}

/// Bytes as Docker prints them (decimal units, up to 4 significant digits): `37B`, `2.048kB`.
fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(digest: &str, name: &str) -> TraceVertex {
        TraceVertex {
            digest: digest.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn log(digest: &str, time: f64, msg: &str) -> TraceLog {
        TraceLog {
            vertex: digest.into(),
            time: Some(time),
            msg: msg.as_bytes().to_vec(),
        }
    }

    /// A build like the engine streams it: steps queued, started, logging in chunks (a line
    /// split across two messages, a progress bar redrawn with `\r`), cached, done and failed.
    #[test]
    fn a_build_reads_like_progress_plain() {
        let t0 = 1_700_000_000.0;
        let updates = vec![
            TraceUpdate {
                vertexes: vec![
                    TraceVertex {
                        started: Some(t0),
                        ..vertex(
                            "sha256:def",
                            "[internal] load build definition from .perfarena.Dockerfile",
                        )
                    },
                    vertex(
                        "sha256:run",
                        "[build 2/3] RUN --mount=type=cache,target=/c make",
                    ),
                ],
                ..Default::default()
            },
            TraceUpdate {
                vertexes: vec![TraceVertex {
                    started: Some(t0),
                    completed: Some(t0 + 0.04),
                    ..vertex(
                        "sha256:def",
                        "[internal] load build definition from .perfarena.Dockerfile",
                    )
                }],
                statuses: vec![TraceStatus {
                    id: "transferring dockerfile:".into(),
                    vertex: "sha256:def".into(),
                    current: 2048,
                    completed: true,
                    ..Default::default()
                }],
                ..Default::default()
            },
            TraceUpdate {
                vertexes: vec![
                    TraceVertex {
                        cached: true,
                        started: Some(t0 + 0.1),
                        completed: Some(t0 + 0.1),
                        ..vertex(
                            "sha256:from",
                            "[build 1/3] FROM docker.io/perfarena/toy-base:bookworm",
                        )
                    },
                    TraceVertex {
                        started: Some(t0 + 0.2),
                        ..vertex(
                            "sha256:run",
                            "[build 2/3] RUN --mount=type=cache,target=/c make",
                        )
                    },
                ],
                logs: vec![
                    log("sha256:run", t0 + 0.5, "compiling kernels with MAX_"),
                    log("sha256:run", t0 + 0.6, "JOBS=4\n10%\r50%\r100%\n\n"),
                ],
                ..Default::default()
            },
            TraceUpdate {
                vertexes: vec![TraceVertex {
                    started: Some(t0 + 0.2),
                    completed: Some(t0 + 1.5),
                    ..vertex(
                        "sha256:run",
                        "[build 2/3] RUN --mount=type=cache,target=/c make",
                    )
                }],
                logs: vec![log(
                    "sha256:run",
                    t0 + 1.4,
                    "wrote toyllm/_C.py\nno newline",
                )],
                ..Default::default()
            },
            TraceUpdate {
                vertexes: vec![TraceVertex {
                    started: Some(t0 + 1.6),
                    completed: Some(t0 + 1.7),
                    error: "executor failed running [/bin/sh -c exit 3]: exit code: 3".into(),
                    ..vertex("sha256:bad", "[build 3/3] RUN exit 3")
                }],
                logs: vec![log("sha256:bad", t0 + 1.65, "about to fail\n")],
                ..Default::default()
            },
            TraceUpdate {
                logs: vec![log("sha256:late", t0 + 2.0, "a step never announced")],
                warnings: vec![TraceWarning {
                    vertex: "sha256:late".into(),
                    short: "something odd\n".into(),
                }],
                ..Default::default()
            },
        ];
        let mut text = TraceText::new();
        let mut lines = Vec::new();
        for update in &updates {
            lines.extend(text.push(update));
        }
        lines.extend(text.finish());
        insta::assert_snapshot!(lines.join("\n"), @r"
        #1 [internal] load build definition from .perfarena.Dockerfile
        #1 transferring dockerfile: 2.048kB done
        #1 DONE 0.0s
        #3 [build 1/3] FROM docker.io/perfarena/toy-base:bookworm
        #3 CACHED
        #2 [build 2/3] RUN --mount=type=cache,target=/c make
        #2 0.400 compiling kernels with MAX_JOBS=4
        #2 0.400 100%
        #2 1.200 wrote toyllm/_C.py
        #2 no newline
        #2 DONE 1.3s
        #4 [build 3/3] RUN exit 3
        #4 0.050 about to fail
        #4 ERROR: executor failed running [/bin/sh -c exit 3]: exit code: 3
        #5 sha256:late
        #5 WARN: something odd
        #5 a step never announced
        ");
    }

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(37), "37B");
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
        assert_eq!(human_size(0), "0B");
    }
}
