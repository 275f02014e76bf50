#!/usr/bin/env bash
# Benchmark for BENCHMARKS.md ("Images"): the time to produce a candidate image for a
# Python-only patch against a full build of the same variant, in one run, on a recipe whose
# compile step takes COMPILE_SECONDS (default 60).
#
#   bash scripts/bench-images.sh            # needs `bash scripts/docker-env.sh up`
#   COMPILE_SECONDS=90 PERFARENA=target/release/perfarena bash scripts/bench-images.sh
#
# The toy task "perf: fused decode kernel" (its parent's Dockerfile takes compile_seconds):
#   full build  = `perfarena images build --variant baseline` of its parent (docker build of the
#                 exported commit: copy the source, run the compile step), what a candidate
#                 costs when built from scratch;
#   candidate   = `perfarena images build --variant candidates` with a patch touching only
#                 toyllm/engine.py, FROM that baseline: one thin layer.
# Both with --no-push (a push's cost depends on the registry's network, not on perfarena) and
# timed around the whole perfarena command (export, context, engine, store).
set -euo pipefail

COMPILE_SECONDS=${COMPILE_SECONDS:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PERFARENA=${PERFARENA:-}
if [ -z "$PERFARENA" ]; then
  (cd "$ROOT" && cargo build --release -q -p perfarena)
  PERFARENA="${CARGO_TARGET_DIR:-$ROOT/target}/release/perfarena"
fi
WORK=$(mktemp -d)
REPO="pa-bench-images-$$"
cleanup() {
  docker images --format '{{.Repository}}:{{.Tag}}' "127.0.0.1:5000/$REPO" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }

"$PERFARENA" -C "$WORK/toy" demo --no-run >/dev/null
cd "$WORK/toy"
TASK=$(git -C repo log --format='%H %s' | awk '/ perf: fused decode kernel/{print $1}')
TASK_PARENT=$(git -C repo rev-parse "$TASK^")
sed -i "s/^repo = \"toyllm\"/repo = \"$REPO\"/; s/^\[build\]$/[build]\nmin_free_disk_gib = 1.0/" perfarena.toml
cat >>perfarena.toml <<TOML

[build.overrides."${TASK_PARENT:0:12}"]
args = { compile_seconds = "$COMPILE_SECONDS" }
TOML
printf '{"commit_hash": "%s", "repo": "toyllm"}\n' "$TASK" >bench-task.jsonl
"$PERFARENA" tasks import bench-task.jsonl >/dev/null
# A Python-only patch against the parent (engine.py as of "perf: prefix cache"'s parent).
cat >python-only.patch <<'PATCH'
diff --git a/toyllm/engine.py b/toyllm/engine.py
--- a/toyllm/engine.py
+++ b/toyllm/engine.py
@@ -1,4 +1,5 @@
 """The toy model: prefill costs time per prompt token, decode costs time per output token.
+(benchmark: a Python-only change)
 
 One lock stands for the GPU: every step holds it, so concurrent requests share its time.
 """
PATCH

# The human image is needed for the baseline (a baseline alone compares nothing): build it
# first, untimed (it is the other full build).
"$PERFARENA" images build --commit "${TASK:0:10}" --variant human --no-push --max-jobs 2 >/dev/null 2>&1

t0=$(now)
"$PERFARENA" images build --commit "${TASK:0:10}" --variant baseline --no-push --max-jobs 2 >"$WORK/full.log" 2>&1
t1=$(now)
"$PERFARENA" images build --commit "${TASK:0:10}" --variant candidates --no-push \
  --candidates "python=$WORK/toy/python-only.patch" >"$WORK/cand.log" 2>&1
t2=$(now)
grep -q "success" "$WORK/full.log" || { cat "$WORK/full.log"; exit 1; }
grep -q "success" "$WORK/cand.log" || { cat "$WORK/cand.log"; exit 1; }

awk -v t0="$t0" -v t1="$t1" -v t2="$t2" -v c="$COMPILE_SECONDS" -v cpus="$(nproc)" 'BEGIN {
  full = t1 - t0; cand = t2 - t1;
  printf "compile step: %d s; %d CPUs\n", c, cpus;
  printf "full build of the variant:       %7.2f s\n", full;
  printf "candidate (Python-only patch):   %7.2f s\n", cand;
  printf "speed-up:                        %7.1fx\n", full / cand;
}'
