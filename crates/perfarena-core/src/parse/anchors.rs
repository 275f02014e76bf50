//! One pass over the log that finds every anchor string of every format at once (Aho-Corasick),
//! so that detecting the format costs about the same as reading the log once.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::text::{Crash, traceback_at};

/// The strings the parsers look for; everything else is read only around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// `==== Serving Benchmark Result ====` (vLLM and SGLang tables).
    TableHeader,
    /// `Request throughput: 4.10 requests/s` (vLLM v0.3 era).
    RequestThroughput,
    /// `Throughput: …` (vLLM 2023 serving and `benchmark_throughput.py`).
    Throughput,
    /// `Avg latency: … seconds` (`benchmark_latency.py`).
    AvgLatency,
    /// `Total. latency: …` ends a SGLang one-batch run.
    OneBatchTotal,
    /// `Prefill. latency: …` starts a SGLang one-batch run.
    OneBatchPrefill,
    /// `Benchmark ...`: SGLang one-batch runs after it are measured.
    OneBatchBenchmark,
    /// `Warmup ...`: SGLang one-batch warm-up starts.
    OneBatchWarmup,
    /// A Python traceback.
    Traceback,
}

const ANCHORS: [(Anchor, &str); 9] = [
    (Anchor::TableHeader, "Serving Benchmark Result"),
    (Anchor::RequestThroughput, "Request throughput: "),
    (Anchor::Throughput, "Throughput: "),
    (Anchor::AvgLatency, "Avg latency: "),
    (Anchor::OneBatchTotal, "Total. latency:"),
    (Anchor::OneBatchPrefill, "Prefill. latency:"),
    (Anchor::OneBatchBenchmark, "Benchmark ..."),
    (Anchor::OneBatchWarmup, "Warmup ..."),
    (Anchor::Traceback, "Traceback (most recent call last):"),
];

impl Anchor {
    /// The text of the anchor.
    pub(crate) fn text(self) -> &'static str {
        ANCHORS[self as usize].1
    }
}

/// Where each anchor occurs in one log, in order.
pub(crate) struct Anchors {
    found: [Vec<usize>; ANCHORS.len()],
}

fn automaton() -> &'static AhoCorasick {
    static AUTOMATON: OnceLock<AhoCorasick> = OnceLock::new();
    AUTOMATON.get_or_init(|| {
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(ANCHORS.map(|(_, text)| text))
            .expect("a handful of constant anchor strings always builds")
    })
}

impl Anchors {
    /// Finds every anchor of `src` in one pass.
    pub(crate) fn find(src: &str) -> Self {
        let mut found: [Vec<usize>; ANCHORS.len()] = Default::default();
        for hit in automaton().find_iter(src) {
            found[hit.pattern().as_usize()].push(hit.start());
        }
        Anchors { found }
    }

    /// Byte offsets where `anchor` starts, in log order.
    pub(crate) fn of(&self, anchor: Anchor) -> &[usize] {
        &self.found[anchor as usize]
    }

    /// The last Python traceback of the log, if any.
    pub(crate) fn crash(&self, src: &str) -> Option<Crash> {
        self.of(Anchor::Traceback)
            .last()
            .map(|&pos| traceback_at(src, pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_listed_in_enum_order() {
        for (index, (anchor, _)) in ANCHORS.iter().enumerate() {
            assert_eq!(*anchor as usize, index);
        }
    }

    #[test]
    fn finds_every_anchor() {
        let log = "x Throughput: 1\n== Serving Benchmark Result ==\nRequest throughput: 2\nTraceback (most recent call last):\nE: e\n";
        let anchors = Anchors::find(log);
        assert_eq!(anchors.of(Anchor::Throughput), &[2]);
        assert_eq!(anchors.of(Anchor::TableHeader).len(), 1);
        assert_eq!(anchors.of(Anchor::RequestThroughput).len(), 1);
        assert_eq!(
            anchors.crash(log).map(|crash| crash.exception),
            Some("E: e".to_string())
        );
    }
}
