//! SGLang `bench_one_batch` (formerly `bench_latency`): a warm-up run, `Benchmark ...`, then one
//! run per configuration, each `Prefill. latency: …`, `Decode …` lines, `Decode.  median
//! latency: …` and a closing `Total. latency: …, throughput: …`. Runs before `Benchmark ...` are
//! warm-up and never a result; a run without its `Total.` line was cut off.

use super::anchors::{Anchor, Anchors};
use super::metrics::Builder;
use super::text::{Lines, Span, leading_number, line_bounds, segment_at, visible};
use super::{Cut, Format, Scan};

const DECODE_MEDIAN: &str = "Decode.  median latency:";

/// `(start, end)` of the lines that begin (after clean-up) with `anchor`.
fn lines_starting_with(src: &str, anchors: &Anchors, anchor: Anchor) -> Vec<(usize, usize)> {
    let prefix = anchor.text();
    let mut found_lines = Vec::new();
    for &found in anchors.of(anchor) {
        let (start, end) = line_bounds(src, found);
        if segment_at(&src[start..end], found - start)
            .trim_start()
            .starts_with(prefix)
            && found_lines.last().map(|&(s, _)| s) != Some(start)
        {
            found_lines.push((start, end));
        }
    }
    found_lines
}

/// Finds the benchmark runs: complete ones (with a `Total.` line) after `Benchmark ...`.
pub(crate) fn scan(src: &str, anchors: &Anchors) -> Scan {
    let mut scan = Scan::default();
    let totals = lines_starting_with(src, anchors, Anchor::OneBatchTotal);
    let prefills = lines_starting_with(src, anchors, Anchor::OneBatchPrefill);
    if totals.is_empty() && prefills.is_empty() {
        return scan;
    }
    let benchmark = lines_starting_with(src, anchors, Anchor::OneBatchBenchmark)
        .first()
        .map(|&(start, _)| start);
    let warmup = lines_starting_with(src, anchors, Anchor::OneBatchWarmup)
        .first()
        .map(|&(start, _)| start);
    // before `Benchmark ...` every run is a warm-up; a log with `Warmup ...` but no
    // `Benchmark ...` never got past the warm-up
    let results_from = match (benchmark, warmup) {
        (Some(start), _) => start,
        (None, Some(_)) => src.len(),
        (None, None) => 0,
    };
    let mut previous_end = 0;
    for &(total_start, total_end) in &totals {
        let start = prefills
            .iter()
            .rev()
            .map(|&(start, _)| start)
            .find(|&start| start >= previous_end && start < total_start)
            .unwrap_or(total_start);
        previous_end = total_end;
        if start >= results_from {
            scan.complete.push(Span {
                start,
                end: total_end,
            });
        }
    }
    let after = previous_end.max(results_from);
    if let Some(&(start, _)) = prefills.iter().find(|&&(start, _)| start >= after) {
        let reason = "printed `Prefill.` but no `Total.` line (log cut off?)".to_string();
        scan.cut.push(Cut {
            start,
            end: src.len(),
            reason,
        });
    } else if scan.complete.is_empty() {
        let start = benchmark.or(warmup).unwrap_or(0);
        let reason = if benchmark.is_some() {
            "has no finished run after `Benchmark ...` (log cut off?)"
        } else {
            "has only the warm-up run; `Benchmark ...` never started (log cut off?)"
        };
        scan.cut.push(Cut {
            start,
            end: src.len(),
            reason: reason.to_string(),
        });
    }
    scan
}

/// Reads one run into `builder`.
pub(crate) fn extract(src: &str, span: Span, builder: &mut Builder) -> Format {
    for (line_start, raw) in Lines::new(src, span.start) {
        if line_start >= span.end {
            break;
        }
        let line = visible(raw);
        let text = line.trim();
        if text.starts_with(Anchor::OneBatchPrefill.text()) {
            set_pair(
                builder,
                text,
                "prefill_latency_s",
                "prefill_throughput_tok_s",
            );
        } else if text.starts_with(DECODE_MEDIAN) {
            set_pair(
                builder,
                text,
                "decode_median_latency_s",
                "decode_median_throughput_tok_s",
            );
        } else if text.starts_with(Anchor::OneBatchTotal.text()) {
            // The whole run, prefill and decode: its latency and its tokens (input + output)
            // per second, in the vocabulary every era shares.
            if let Some((latency, "s")) = number_after(text, "latency:") {
                builder.stat("latency_s", "avg", latency);
            }
            if let Some((throughput, "token/s")) = number_after(text, "throughput:") {
                builder.number("total_throughput_tok_s", throughput);
            }
        } else if let Some((batch_size, _)) = text
            .strip_prefix("Decode ")
            .and_then(|rest| number_after(rest, "Batch size:"))
        {
            builder.number("batch_size", batch_size);
        }
    }
    Format::SglangOneBatch
}

/// `… latency: X s, … throughput: Y token/s` → the two metrics.
fn set_pair(builder: &mut Builder, text: &str, latency_key: &str, throughput_key: &str) {
    if let Some((latency, "s")) = number_after(text, "latency:") {
        builder.number(latency_key, latency);
    }
    if let Some((throughput, "token/s")) = number_after(text, "throughput:") {
        builder.number(throughput_key, throughput);
    }
}

/// The number after `label`, and the unit word that follows it (up to a comma).
fn number_after<'a>(text: &'a str, label: &str) -> Option<(f64, &'a str)> {
    let at = text.find(label)? + label.len();
    let rest = &text[at..];
    let rest = rest.split(',').next().unwrap_or(rest);
    leading_number(rest)
}
