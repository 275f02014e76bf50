//! Formats made of plain `Label: value unit` prints with no closing marker: vLLM serving before
//! the result table (2023 and v0.3 eras), `benchmark_throughput.py` and `benchmark_latency.py`.
//!
//! Each format has an anchor line (`Request throughput: …`, `Throughput: …`, `Avg latency: …`)
//! recognised at the start of a line; its block is the run of adjacent recognised lines around
//! it, and is complete when it holds every required metric.

use super::anchors::{Anchor, Anchors};
use super::metrics::{Builder, latency_group, percentile_key, stat_key};
use super::text::{Lines, Span, leading_number, line_bounds, prev_line, segment_at, visible};
use super::{Cut, Format, Scan};

/// How far around the anchor a block may reach, in lines.
const MAX_REACH: usize = 60;

/// What one recognised line sets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Number(&'static str),
    Stat(String, String),
}

impl Target {
    fn key(&self) -> &str {
        match self {
            Target::Number(key) => key,
            Target::Stat(group, _) => group,
        }
    }

    /// A name that is unique per row (group members differ by stat).
    fn id(&self) -> String {
        match self {
            Target::Number(key) => (*key).to_string(),
            Target::Stat(group, stat) => format!("{group}.{stat}"),
        }
    }
}

/// A line format: its anchor, how to read a line, and what a complete block must hold.
pub(crate) struct PrintFormat {
    pub format: Format,
    /// What a block's anchor line starts with.
    anchor: Anchor,
    /// The anchor line must set this key.
    anchor_key: &'static str,
    read: fn(&str) -> Vec<(Target, f64)>,
    required: &'static [&'static str],
    /// The row that opens a block: reaching back stops after it, reaching forward before it.
    opener: &'static str,
    /// How a block is called in messages.
    pub what: &'static str,
}

/// vLLM `benchmark_serving.py` of the v0.3 era: `Request throughput: 4.10 requests/s`.
pub(crate) const SERVING_LINES: PrintFormat = PrintFormat {
    format: Format::VllmServingLines,
    anchor: Anchor::RequestThroughput,
    anchor_key: "request_throughput_rps",
    read: read_serving_line,
    required: &["request_throughput_rps", "output_throughput_tok_s"],
    opener: "successful_requests",
    what: "result lines",
};

/// vLLM `benchmark_serving.py` of 2023: `Throughput: 4.10 requests/s`, `Average latency: 1.9 s`.
pub(crate) const SERVING_LEGACY: PrintFormat = PrintFormat {
    format: Format::VllmServingLegacy,
    anchor: Anchor::Throughput,
    anchor_key: "request_throughput_rps",
    read: read_legacy_line,
    required: &["request_throughput_rps", "latency_s"],
    opener: "duration_s",
    what: "result lines",
};

/// vLLM `benchmark_throughput.py`: `Throughput: 4.10 requests/s, 1710.00 tokens/s`.
pub(crate) const THROUGHPUT: PrintFormat = PrintFormat {
    format: Format::VllmThroughput,
    anchor: Anchor::Throughput,
    anchor_key: "request_throughput_rps",
    read: read_throughput_line,
    required: &["request_throughput_rps"],
    opener: "request_throughput_rps",
    what: "throughput result",
};

/// vLLM `benchmark_latency.py`: `Avg latency: 1.93 seconds`, `10% percentile latency: …`.
pub(crate) const LATENCY: PrintFormat = PrintFormat {
    format: Format::VllmLatency,
    anchor: Anchor::AvgLatency,
    anchor_key: "latency_s",
    read: read_latency_line,
    required: &["latency_s"],
    opener: "latency_s.avg",
    what: "latency result",
};

impl PrintFormat {
    /// Finds every block of this format.
    pub(crate) fn scan(&self, src: &str, anchors: &Anchors) -> Scan {
        let mut scan = Scan::default();
        let mut covered_to = 0;
        let anchor_text = self.anchor.text().trim_end();
        for &found in anchors.of(self.anchor) {
            if found < covered_to {
                continue;
            }
            let (line_start, line_end) = line_bounds(src, found);
            let segment = segment_at(&src[line_start..line_end], found - line_start);
            let text = segment.trim();
            if !text.starts_with(anchor_text) {
                continue;
            }
            let rows = (self.read)(text);
            if !rows
                .iter()
                .any(|(target, _)| target.key() == self.anchor_key)
            {
                continue;
            }
            let mut ids: Vec<String> = rows.iter().map(|(target, _)| target.id()).collect();
            let mut keys: Vec<String> = rows
                .iter()
                .map(|(target, _)| target.key().to_string())
                .collect();
            let start = if ids.iter().any(|id| id == self.opener) {
                line_start
            } else {
                self.reach_back(src, line_start, &mut ids, &mut keys)
            };
            let end = self.reach_forward(src, line_end, &mut ids, &mut keys);
            covered_to = end;
            let missing: Vec<&str> = self
                .required
                .iter()
                .copied()
                .filter(|key| !keys.iter().any(|k| k == key))
                .collect();
            if missing.is_empty() {
                scan.complete.push(Span { start, end });
            } else {
                let reason = format!("lack {} (log cut off?)", missing.join(", "));
                scan.cut.push(Cut { start, end, reason });
            }
        }
        scan
    }

    fn reach_back(
        &self,
        src: &str,
        from: usize,
        ids: &mut Vec<String>,
        keys: &mut Vec<String>,
    ) -> usize {
        let mut start = from;
        let mut cursor = from;
        let mut blanks = 0;
        for _ in 0..MAX_REACH {
            let Some((line_start, raw)) = prev_line(src, cursor) else {
                break;
            };
            cursor = line_start;
            if !self.take_line(raw, ids, keys, &mut blanks, true) {
                break;
            }
            if blanks == 0 {
                start = line_start;
                if ids.last().is_some_and(|id| id == self.opener) {
                    break;
                }
            }
        }
        start
    }

    fn reach_forward(
        &self,
        src: &str,
        from: usize,
        ids: &mut Vec<String>,
        keys: &mut Vec<String>,
    ) -> usize {
        let mut end = from;
        let mut blanks = 0;
        for (line_start, raw) in Lines::new(src, from + 1).take(MAX_REACH) {
            if !self.take_line(raw, ids, keys, &mut blanks, false) {
                break;
            }
            if blanks == 0 {
                end = line_start + raw.len();
            }
        }
        end
    }

    /// Whether the block goes on through this line (a new row or at most two blank lines);
    /// going forward, an opener row starts the next block.
    fn take_line(
        &self,
        raw: &str,
        ids: &mut Vec<String>,
        keys: &mut Vec<String>,
        blanks: &mut usize,
        backward: bool,
    ) -> bool {
        let line = visible(raw);
        let text = line.trim();
        if text.is_empty() {
            *blanks += 1;
            return *blanks <= 2;
        }
        let rows = (self.read)(text);
        if rows.is_empty() || rows.iter().any(|(target, _)| ids.contains(&target.id())) {
            return false;
        }
        if !backward && rows.iter().any(|(target, _)| target.id() == self.opener) {
            return false;
        }
        for (target, _) in &rows {
            ids.push(target.id());
            keys.push(target.key().to_string());
        }
        *blanks = 0;
        true
    }

    /// Reads the lines of one block into `builder`.
    pub(crate) fn extract(&self, src: &str, span: Span, builder: &mut Builder) -> Format {
        for (line_start, raw) in Lines::new(src, span.start) {
            if line_start >= span.end {
                break;
            }
            let line = visible(raw);
            for (target, value) in (self.read)(line.trim()) {
                match target {
                    Target::Number(key) => builder.number(key, value),
                    Target::Stat(group, stat) => builder.stat(&group, &stat, value),
                }
            }
        }
        self.format
    }
}

/// `Label: <number> <unit>` with the unit exactly as given (empty for counts).
fn labelled<'a>(text: &'a str, label: &str) -> Option<(f64, &'a str)> {
    let rest = text.strip_prefix(label)?.strip_prefix(':')?;
    leading_number(rest)
}

fn one(target: Target, value: f64) -> Vec<(Target, f64)> {
    vec![(target, value)]
}

/// v0.3-era serving lines.
fn read_serving_line(text: &str) -> Vec<(Target, f64)> {
    const ROWS: &[(&str, &str, &str)] = &[
        ("Successful requests", "", "successful_requests"),
        ("Benchmark duration", "s", "duration_s"),
        ("Total input tokens", "", "total_input_tokens"),
        ("Total generated tokens", "", "total_output_tokens"),
        ("Request throughput", "requests/s", "request_throughput_rps"),
        (
            "Input token throughput",
            "tokens/s",
            "input_throughput_tok_s",
        ),
        (
            "Output token throughput",
            "tokens/s",
            "output_throughput_tok_s",
        ),
    ];
    for &(label, unit, key) in ROWS {
        if let Some((value, found_unit)) = labelled(text, label) {
            if found_unit == unit {
                return one(Target::Number(key), value);
            }
            return Vec::new();
        }
    }
    // `Mean TTFT: 12.34 ms`, `P99 TPOT: 5.00 ms`
    let Some((label, value)) = text.split_once(':') else {
        return Vec::new();
    };
    let Some((first, name)) = label.split_once(' ') else {
        return Vec::new();
    };
    let (Some(stat), Some((value, unit))) = (stat_key(first), leading_number(value)) else {
        return Vec::new();
    };
    if name.contains(['(', ')']) || !(unit == "ms" || unit == "s") {
        return Vec::new();
    }
    one(Target::Stat(latency_group(name, unit), stat), value)
}

/// 2023-era serving lines.
fn read_legacy_line(text: &str) -> Vec<(Target, f64)> {
    if let Some((value, unit)) = labelled(text, "Total time") {
        return if unit == "s" {
            one(Target::Number("duration_s"), value)
        } else {
            Vec::new()
        };
    }
    if let Some((value, unit)) = labelled(text, "Throughput") {
        return if unit == "requests/s" {
            one(Target::Number("request_throughput_rps"), value)
        } else {
            Vec::new()
        };
    }
    // The request latency is the era's `latency_s`; the per-token lines are other metrics.
    const LATENCIES: &[(&str, &str)] = &[
        ("Average latency", "latency_s"),
        ("Average latency per token", "latency_per_token_s"),
        (
            "Average latency per output token",
            "latency_per_output_token_s",
        ),
    ];
    for &(label, group) in LATENCIES {
        if let Some((value, unit)) = labelled(text, label) {
            if unit == "s" {
                return one(Target::Stat(group.to_string(), "avg".to_string()), value);
            }
            return Vec::new();
        }
    }
    Vec::new()
}

/// `benchmark_throughput.py`: `Throughput: 4.10 requests/s, 1710.00 total tokens/s, 812.30
/// output tokens/s` (older: `…, 1710.00 tokens/s`, which counted prompt and output tokens
/// alike: the same `total_throughput_tok_s`) and `Total num prompt tokens:  N`.
fn read_throughput_line(text: &str) -> Vec<(Target, f64)> {
    if let Some((value, unit)) = labelled(text, "Total num prompt tokens") {
        return if unit.is_empty() {
            one(Target::Number("total_input_tokens"), value)
        } else {
            Vec::new()
        };
    }
    if let Some((value, unit)) = labelled(text, "Total num output tokens") {
        return if unit.is_empty() {
            one(Target::Number("total_output_tokens"), value)
        } else {
            Vec::new()
        };
    }
    let Some(rest) = text.strip_prefix("Throughput:") else {
        return Vec::new();
    };
    if !rest.contains(',') {
        return Vec::new();
    }
    let mut rows = Vec::new();
    for part in rest.split(',') {
        let Some((value, unit)) = leading_number(part) else {
            return Vec::new();
        };
        let key = match unit {
            "requests/s" => "request_throughput_rps",
            "tokens/s" | "total tokens/s" => "total_throughput_tok_s",
            "output tokens/s" => "output_throughput_tok_s",
            "input tokens/s" | "prompt tokens/s" => "input_throughput_tok_s",
            _ => continue,
        };
        rows.push((Target::Number(key), value));
    }
    if rows
        .iter()
        .any(|(target, _)| target.key() == "request_throughput_rps")
    {
        rows
    } else {
        Vec::new()
    }
}

/// `benchmark_latency.py`: `Avg latency: 1.93 seconds`, `90% percentile latency: 2.0 seconds`.
fn read_latency_line(text: &str) -> Vec<(Target, f64)> {
    if let Some((value, unit)) = labelled(text, "Avg latency") {
        return if unit == "seconds" {
            one(Target::Stat("latency_s".into(), "avg".into()), value)
        } else {
            Vec::new()
        };
    }
    let Some((percent, rest)) = text.split_once("% percentile latency:") else {
        return Vec::new();
    };
    let (Some(stat), Some((value, "seconds"))) = (percentile_key(percent), leading_number(rest))
    else {
        return Vec::new();
    };
    one(Target::Stat("latency_s".into(), stat), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_lines() {
        assert_eq!(
            read_serving_line("Request throughput: 4.10 requests/s"),
            vec![(Target::Number("request_throughput_rps"), 4.1)]
        );
        assert_eq!(
            read_serving_line("Mean TTFT: 12.50 ms"),
            vec![(Target::Stat("ttft_ms".into(), "mean".into()), 12.5)]
        );
        assert!(read_serving_line("Request throughput (req/s):   4.10").is_empty());
        assert!(read_serving_line("Mean TTFT (ms):   4.10").is_empty());
    }

    #[test]
    fn throughput_lines_of_both_eras() {
        let old = read_throughput_line("Throughput: 4.10 requests/s, 1710.00 tokens/s");
        assert_eq!(old.len(), 2);
        let new = read_throughput_line(
            "Throughput: 4.10 requests/s, 1710.00 total tokens/s, 812.30 output tokens/s",
        );
        assert_eq!(new[2], (Target::Number("output_throughput_tok_s"), 812.3));
        assert!(read_throughput_line("Throughput: 4.10 requests/s").is_empty());
        assert_eq!(read_legacy_line("Throughput: 4.10 requests/s").len(), 1);
        assert!(read_legacy_line("Throughput: 4.10 requests/s, 5 tokens/s").is_empty());
    }

    #[test]
    fn latency_lines() {
        assert_eq!(
            read_latency_line("10% percentile latency: 1.9 seconds"),
            vec![(Target::Stat("latency_s".into(), "p10".into()), 1.9)]
        );
        assert!(read_latency_line("Avg latency: 2 s").is_empty());
    }
}
