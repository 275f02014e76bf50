"""Benchmark client for toyllm: sends streamed completion requests and prints a result table
in the format of vLLM's benchmarks/benchmark_serving.py."""
import argparse
import http.client
import json
import statistics
import sys
import threading
import time

PROMPTS = [
    " ".join(f"word{i % 97}" for i in range(64)),
    " ".join(f"token{i % 89}" for i in range(64)),
    " ".join(f"text{i % 83}" for i in range(64)),
    " ".join(f"piece{i % 79}" for i in range(64)),
]


def one_request(host, port, prompt, max_tokens, timeout):
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("POST", "/v1/completions", body=json.dumps({"prompt": prompt, "max_tokens": max_tokens}),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}")
    times = []
    while True:
        line = response.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        if line == b"data: [DONE]":
            break
        times.append(time.perf_counter())
    conn.close()
    if not times:
        raise RuntimeError("no tokens")
    return start, times


def percentile(values, pct):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * pct / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main():
    parser = argparse.ArgumentParser(description="toyllm serving benchmark")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="toy-1b")
    parser.add_argument("--num-prompts", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    print(f"Namespace(model={args.model!r}, num_prompts={args.num_prompts}, concurrency={args.concurrency})")

    results, failures = [], []
    lock = threading.Lock()
    queue = list(range(args.num_prompts))

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                idx = queue.pop(0)
            prompt = PROMPTS[idx % len(PROMPTS)]
            try:
                start, times = one_request(args.host, args.port, prompt, args.max_tokens, args.timeout)
                with lock:
                    results.append((len(prompt.split()), start, times))
            except Exception as exc:  # a failed request is counted, not fatal
                with lock:
                    failures.append(repr(exc))

    bench_start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    duration = time.perf_counter() - bench_start

    if not results:
        print(f"All requests failed: {failures[:1]}", file=sys.stderr)
        return 1
    ttfts = [(times[0] - start) * 1000 for _, start, times in results]
    tpots = [((times[-1] - times[0]) / (len(times) - 1)) * 1000 for _, _, times in results if len(times) > 1]
    itls = [(b - a) * 1000 for _, _, times in results for a, b in zip(times, times[1:])]
    e2els = [(times[-1] - start) * 1000 for _, start, times in results]
    input_tokens = sum(n for n, _, _ in results)
    output_tokens = sum(len(times) for _, _, times in results)

    print("{s:{c}^{n}}".format(s=" Serving Benchmark Result ", n=50, c="="))
    print("{:<40} {:<10}".format("Successful requests:", len(results)))
    if failures:
        print("{:<40} {:<10}".format("Failed requests:", len(failures)))
    print("{:<40} {:<10.2f}".format("Benchmark duration (s):", duration))
    print("{:<40} {:<10}".format("Total input tokens:", input_tokens))
    print("{:<40} {:<10}".format("Total generated tokens:", output_tokens))
    print("{:<40} {:<10.2f}".format("Request throughput (req/s):", len(results) / duration))
    print("{:<40} {:<10.2f}".format("Output token throughput (tok/s):", output_tokens / duration))
    print("{:<40} {:<10.2f}".format("Total Token throughput (tok/s):", (input_tokens + output_tokens) / duration))
    for title, name, values in [("Time to First Token", "TTFT", ttfts),
                                ("Time per Output Token (excl. 1st token)", "TPOT", tpots),
                                ("Inter-token Latency", "ITL", itls),
                                ("End-to-end Latency", "E2EL", e2els)]:
        print("{s:{c}^{n}}".format(s=title, n=50, c="-"))
        print("{:<40} {:<10.2f}".format(f"Mean {name} (ms):", statistics.mean(values) if values else 0.0))
        print("{:<40} {:<10.2f}".format(f"Median {name} (ms):", statistics.median(values) if values else 0.0))
        print("{:<40} {:<10.2f}".format(f"P99 {name} (ms):", percentile(values, 99)))
    print("=" * 50)
    return 0


if __name__ == "__main__":
    sys.exit(main())
