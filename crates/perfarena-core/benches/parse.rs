//! Parse throughput on a 100 MB noisy benchmark log (server request logs with ANSI colours,
//! engine stats, tqdm bars redrawn with `\r`, warnings, an argument dump, a result table early
//! on and one at the end). Target: at least 100 MB/s; the figure goes to `BENCHMARKS.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use perfarena_core::parse::{CustomPattern, FormatChoice, parse_log};

const TARGET_BYTES: usize = 100 * 1024 * 1024;

fn table(throughput: f64) -> String {
    let mut text = format!("{:=^50}\n", " Serving Benchmark Result ");
    for (label, value) in [
        ("Successful requests:", "1000".to_string()),
        ("Failed requests:", "0".to_string()),
        ("Benchmark duration (s):", "243.90".to_string()),
        ("Total input tokens:", "215196".to_string()),
        ("Total generated tokens:", "198343".to_string()),
        ("Request throughput (req/s):", format!("{throughput:.2}")),
        ("Output token throughput (tok/s):", "813.21".to_string()),
        ("Total Token throughput (tok/s):", "1695.52".to_string()),
    ] {
        text += &format!("{label:<40} {value:<10}\n");
    }
    for (header, name) in [
        ("Time to First Token", "TTFT"),
        ("Inter-token Latency", "ITL"),
    ] {
        text += &format!("{header:-^50}\n");
        for stat in ["Mean", "Median", "P99"] {
            text += &format!("{:<40} {:<10.2}\n", format!("{stat} {name} (ms):"), 51.2);
        }
    }
    text += &"=".repeat(50);
    text += "\n";
    text
}

/// About `TARGET_BYTES` of log that looks like a vLLM server and client sharing one output.
fn noisy_log() -> String {
    let mut log = String::with_capacity(TARGET_BYTES + 4096);
    log += "Namespace(backend='vllm', base_url=None, host='127.0.0.1', port=8000, endpoint='/v1/completions', dataset_name='sharegpt', model='meta-llama/Llama-3.1-8B-Instruct', num_prompts=1000, request_rate=inf, seed=0, percentile_metrics='ttft,tpot,itl', metric_percentiles='99')\n";
    log += &table(3.80);
    let mut step = 0usize;
    while log.len() < TARGET_BYTES {
        step += 1;
        log += &format!(
            "INFO 05-12 10:{:02}:{:02} [logger.py:43] Received request cmpl-{step:016x}-0: prompt: 'Summarise the following conversation between a user and an assistant about GPU kernels', params: SamplingParams(n=1, temperature=0.0, top_p=1.0, max_tokens=256), prompt_token_ids: [128000, 9370, 5730, 1082, 3958], lora_request: None.\n",
            step / 60 % 60,
            step % 60
        );
        log += "\x1b[32mINFO\x1b[0m:     127.0.0.1:53210 - \"POST /v1/completions HTTP/1.1\" \x1b[32m200 OK\x1b[0m\n";
        if step.is_multiple_of(4) {
            log += "INFO 05-12 10:21:35 [loggers.py:116] Engine 000: Avg prompt throughput: 5120.3 tokens/s, Avg generation throughput: 812.4 tokens/s, Running: 64 reqs, Waiting: 0 reqs, GPU KV cache usage: 12.5%, Prefix cache hit rate: 0.0%\n";
        }
        if step.is_multiple_of(16) {
            let done = step % 1000;
            for i in 0..8 {
                log += &format!(
                    "\r{:3}%|{:<10}| {}/1000 [00:{:02}<01:00,  4.10it/s]",
                    (done + i) / 10,
                    "#".repeat((done + i) / 100),
                    done + i,
                    i
                );
            }
            log += "\n";
        }
        if step.is_multiple_of(64) {
            log += "\x1b[33mWARNING\x1b[0m 05-12 10:21:36 [scheduler.py:1754] Sequence group 12 is preempted by PreemptionMode.RECOMPUTE mode because there is not enough KV cache space. total_num_cumulative_preemption=1\n";
        }
    }
    log += &table(4.10);
    log
}

fn bench_parse(c: &mut Criterion) {
    let log = noisy_log();
    let mut group = c.benchmark_group("parse");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Bytes(log.len() as u64));
    group.bench_function("auto_100MB_noisy_log", |b| {
        b.iter(|| {
            let parsed =
                parse_log(black_box(&log), &FormatChoice::Auto, &[]).expect("the log has a result");
            assert_eq!(parsed.warnings, vec!["two result blocks; used the last"]);
            parsed
        })
    });
    group.bench_function("named_table_100MB_noisy_log", |b| {
        let choice = FormatChoice::Named("vllm-serving-table".into());
        b.iter(|| parse_log(black_box(&log), &choice, &[]).expect("the log has a result"))
    });
    let custom = [CustomPattern {
        regex: r"^Total input tokens:\s+(?P<input_tokens>\d+)".into(),
        units: Default::default(),
    }];
    group.bench_function("auto_with_custom_pattern_100MB_noisy_log", |b| {
        b.iter(|| {
            parse_log(black_box(&log), &FormatChoice::Auto, &custom).expect("the log has a result")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
