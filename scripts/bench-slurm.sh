#!/usr/bin/env bash
# Benchmark for BENCHMARKS.md ("Slurm"): the same run — the toy example's 4 runnable tasks ×
# 2 variants × ROUNDS rounds — through the slurm backend with one job per attempt
# (`slurm.job_unit = "attempt"`, `--parallel 2`) and with one job per task round, the rounds of all
# tasks as one job array (`job_unit = "round"`, `array_limit = 2`): the same concurrency (2), the
# same attempts. Reports wall time, jobs submitted (sbatch calls) and whether every attempt of a
# round shared its node.
#
#   eval "$(bash scripts/slurm-env.sh up)"; bash scripts/bench-slurm.sh
#   ROUNDS=3 PERFARENA=target/release/perfarena bash scripts/bench-slurm.sh
set -euo pipefail

ROUNDS=${ROUNDS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PERFARENA=${PERFARENA:-}
if [ -z "$PERFARENA" ]; then
  (cd "$ROOT" && cargo build --release -q -p perfarena)
  PERFARENA="${CARGO_TARGET_DIR:-$ROOT/target}/release/perfarena"
fi
: "${SLURM_CONF:=/tmp/slurm-ci/etc/slurm.conf}"
export SLURM_CONF
sinfo -h -o %T | grep -Eq 'idle|mixed' || { echo "slurm is not up: eval \"\$(bash scripts/slurm-env.sh up)\"" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
now() { date +%s.%N; }

project() { # $1: dir, $2: [slurm] lines
  "$PERFARENA" -C "$1" demo --no-run >/dev/null
  printf '\n[slurm]\npoll_interval_ms = 200\n%s\n' "$2" >>"$1/perfarena.toml"
  # Every commit with a parent whose build step works (the newest one's fails on purpose).
  git -C "$1/repo" log --format='%H' | sed -n '2,5p' |
    while read -r c; do printf '{"commit_hash": "%s", "repo": "toyllm", "models": ["toy-1b"]}\n' "$c"; done >"$1/all.jsonl"
  "$PERFARENA" -C "$1" tasks import "$1/all.jsonl" >/dev/null
}

measure() { # $1: name, $2: [slurm] lines, $3...: extra run arguments
  local dir="$WORK/$1" name=$1 lines=$2
  shift 2
  project "$dir" "$lines"
  local t0 t1
  t0=$(now)
  "$PERFARENA" -C "$dir" run --backend slurm --repeats "$ROUNDS" --run-id "bench-$name" "$@" >"$dir/run.log" 2>&1 ||
    { cat "$dir/run.log"; exit 1; }
  t1=$(now)
  local db="$dir/.perfarena/perfarena.db"
  local attempts ok jobs
  attempts=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from attempts').fetchone()[0])" "$db")
  ok=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from attempts where status='ok'\").fetchone()[0])" "$db")
  # Distinct submissions: a job id, or an array id for all of its tasks; plus setup jobs.
  jobs=$(python3 -c "
import sqlite3, sys
ids = {r[0].split('_')[0] for r in sqlite3.connect(sys.argv[1]).execute('select job_id from jobs')}
print(len(ids))" "$db")
  local setups
  setups=$(find "$dir/.perfarena/slurm" -path '*/setup/build.sh' | wc -l)
  printf '%s %s %s %s %s %s\n' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')" "$attempts" "$ok" "$jobs" "$setups"
}

{
  measure attempt 'job_unit = "attempt"' --parallel 2
  measure round 'job_unit = "round"
array_limit = 2'
} >"$WORK/results"

awk -v rounds="$ROUNDS" '
  { wall[$1] = $2; attempts[$1] = $3; ok[$1] = $4; jobs[$1] = $5; setups[$1] = $6 }
  END {
    printf "4 tasks x 2 variants x %d rounds on one slurmd, concurrency 2 in both modes\n", rounds;
    printf "%-26s %8s %9s %5s %14s %11s\n", "mode", "wall", "attempts", "ok", "bench jobs", "setup jobs";
    printf "%-26s %7.1fs %9d %5d %14d %11d\n", "one job per attempt", wall["attempt"], attempts["attempt"], ok["attempt"], jobs["attempt"], setups["attempt"];
    printf "%-26s %7.1fs %9d %5d %14d %11d\n", "round jobs as job arrays", wall["round"], attempts["round"], ok["round"], jobs["round"], setups["round"];
    printf "wall-time ratio (attempt / round): %.2fx; submissions: %d vs %d\n", wall["attempt"] / wall["round"], jobs["attempt"], jobs["round"];
  }' "$WORK/results"
