#!/usr/bin/env bash
# gpu-check.sh — checks perfarena's docker backend on a machine with an NVIDIA GPU, in under
# ten minutes (docs/gpu.md):
#   1. preflight: nvidia-smi on the host, the Docker daemon, the perfarena binary;
#   2. the toy example's base image (built with scripts/docker-env.sh when missing);
#   3. nvidia-smi inside a container started with --gpus all;
#   4. the toy example (`perfarena demo --no-run`, `images build`, `run --backend docker`) with
#      [docker] gpus = "all", nvidia-smi in each attempt's server log;
#   5. when a small model is in the local Hugging Face cache and a vLLM image is present, one real
#      serving attempt of that model with that image.
# Prints a summary; exits 0 when every step that ran passed, 1 when one failed, 2 on a usage
# error or a missing prerequisite (no nvidia-smi, no daemon).
#
#   bash scripts/gpu-check.sh [--dry-run] [--work DIR] [--perfarena BIN] [--model DIR]
#                             [--vllm-image IMAGE] [--no-serving] [--keep]
#
#   --dry-run          print the plan (every command) and run nothing; works without a GPU
#   --work DIR         where the projects go (default: a new directory under /tmp)
#   --perfarena BIN    the binary (default: $PERFARENA, target/{release,debug}/perfarena, PATH)
#   --model DIR        a model repository in a Hugging Face cache (models--ORG--NAME); default:
#                      the first small one found under $HF_HUB_CACHE, $HF_HOME/hub or
#                      ~/.cache/huggingface/hub
#   --vllm-image IMG   the image for step 5 (default: the first local image named *vllm*)
#   --no-serving       skip step 5
#   --keep             keep the work directory
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY_RUN=0
WORK=""
PERFARENA_BIN=${PERFARENA:-}
MODEL_DIR=""
VLLM_IMAGE=""
SERVING=1
KEEP=0
BASE_IMAGE=${PA_BASE_IMAGE:-perfarena/toy-base:bookworm}
DOCKER=${DOCKER:-docker}
# Small models worth one serving attempt, first found wins.
SMALL_MODELS=(models--facebook--opt-125m models--Qwen--Qwen2.5-0.5B-Instruct models--Qwen--Qwen2-0.5B-Instruct
  models--HuggingFaceTB--SmolLM2-135M-Instruct models--TinyLlama--TinyLlama-1.1B-Chat-v1.0)

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die_usage() { echo "gpu-check: $*" >&2; echo "run with --help for the options" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --work) [ $# -ge 2 ] || die_usage "--work needs a directory"; WORK=$2; shift ;;
    --perfarena) [ $# -ge 2 ] || die_usage "--perfarena needs a path"; PERFARENA_BIN=$2; shift ;;
    --model) [ $# -ge 2 ] || die_usage "--model needs a directory"; MODEL_DIR=$2; shift ;;
    --vllm-image) [ $# -ge 2 ] || die_usage "--vllm-image needs an image"; VLLM_IMAGE=$2; shift ;;
    --no-serving) SERVING=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown argument: $1" ;;
  esac
  shift
done

T0=$(date +%s)
STEPS=()
FAILED=0
say() { printf '[gpu-check +%ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
record() { STEPS+=("$(printf '%-10s %-5s %4ss  %s' "$1" "$2" "$3" "$4")"); [ "$2" = fail ] && FAILED=1; return 0; }
summary() {
  echo
  echo "gpu-check summary ($(( $(date +%s) - T0 )) s):"
  local line
  for line in "${STEPS[@]}"; do echo "  $line"; done
  if [ $DRY_RUN = 1 ]; then echo "dry run: nothing was run"; elif [ $FAILED = 0 ]; then echo "result: ok"; else echo "result: FAILED"; fi
}

# run_step NAME LIMIT_S DESCRIPTION -- COMMAND...: runs (or, dry, prints) one step with a time limit.
run_step() {
  local name=$1 limit=$2 what=$3; shift 4
  if [ $DRY_RUN = 1 ]; then
    printf '  %-10s (limit %ss) %s\n      $' "$name" "$limit" "$what"; printf ' %q' "$@"; echo
    record "$name" plan 0 "$what"
    return 0
  fi
  say "$name: $what"
  local start=$(date +%s) rc=0
  if declare -F "$1" >/dev/null; then "$@" || rc=$?  # a function of this script: no timeout(1)
  else timeout --kill-after=10 "$limit" "$@" || rc=$?; fi
  local took=$(( $(date +%s) - start ))
  if [ $rc = 0 ]; then record "$name" ok "$took" "$what"; else
    [ $rc = 124 ] && what="$what (timed out after ${limit}s)"
    record "$name" fail "$took" "$what (exit $rc)"
  fi
  return $rc
}

find_perfarena() {
  [ -n "$PERFARENA_BIN" ] && { echo "$PERFARENA_BIN"; return; }
  local c
  for c in "${CARGO_TARGET_DIR:-$ROOT/target}/release/perfarena" "${CARGO_TARGET_DIR:-$ROOT/target}/debug/perfarena" \
           "$ROOT/target/release/perfarena" "$ROOT/target/debug/perfarena"; do
    [ -x "$c" ] && { echo "$c"; return; }
  done
  command -v perfarena 2>/dev/null || true
}

find_model() {
  [ -n "$MODEL_DIR" ] && { echo "$MODEL_DIR"; return; }
  local hub m
  for hub in "${HF_HUB_CACHE:-}" "${HF_HOME:+$HF_HOME/hub}" "$HOME/.cache/huggingface/hub" /data/huggingface/hub; do
    [ -n "$hub" ] && [ -d "$hub" ] || continue
    for m in "${SMALL_MODELS[@]}"; do
      [ -d "$hub/$m/snapshots" ] && { echo "$hub/$m"; return; }
    done
  done
}

find_vllm_image() {
  [ -n "$VLLM_IMAGE" ] && { echo "$VLLM_IMAGE"; return; }
  "$DOCKER" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -i vllm | grep -v '<none>' | head -n 1
}

# ---- plan -------------------------------------------------------------------------------
[ -n "$WORK" ] || WORK=$(mktemp -u /tmp/perfarena-gpu-check.XXXXXX)
PERFARENA_BIN=$(find_perfarena)
TOY="$WORK/toy"
SERVE="$WORK/serve"

if [ $DRY_RUN = 1 ]; then
  echo "gpu-check plan (--dry-run: nothing runs)"
  echo "  work dir:   $WORK"
  echo "  perfarena:  ${PERFARENA_BIN:-(not found: a real run stops here; build it with cargo build --release -p perfarena)}"
  echo "  base image: $BASE_IMAGE"
  if command -v nvidia-smi >/dev/null 2>&1; then echo "  nvidia-smi: $(command -v nvidia-smi)"; else
    echo "  nvidia-smi: not found (a real run stops here: this machine has no NVIDIA driver)"; fi
fi

# ---- 1. preflight -----------------------------------------------------------------------
if [ $DRY_RUN = 0 ]; then
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu-check: nvidia-smi not found: this needs a machine with an NVIDIA GPU and its driver (see docs/gpu.md)" >&2
    record preflight fail 0 "nvidia-smi not found"; summary; exit 2
  fi
  if ! nvidia-smi -L; then
    echo "gpu-check: nvidia-smi failed: the driver does not answer (see docs/gpu.md)" >&2
    record preflight fail 0 "nvidia-smi -L failed"; summary; exit 2
  fi
  if ! "$DOCKER" info >/dev/null 2>&1; then
    echo "gpu-check: the Docker daemon does not answer (\`$DOCKER info\`): start it, or bash scripts/docker-env.sh up" >&2
    record preflight fail 0 "docker daemon not reachable"; summary; exit 2
  fi
  if [ -z "$PERFARENA_BIN" ]; then
    if command -v cargo >/dev/null 2>&1; then
      run_step build 480 "build perfarena (release)" -- cargo build --release -q -p perfarena --manifest-path "$ROOT/Cargo.toml" || { summary; exit 1; }
      PERFARENA_BIN=$(find_perfarena)
    fi
    [ -n "$PERFARENA_BIN" ] || { echo "gpu-check: no perfarena binary: pass --perfarena BIN" >&2; record preflight fail 0 "no perfarena binary"; summary; exit 2; }
  fi
  mkdir -p "$WORK"
  record preflight ok 0 "$(nvidia-smi -L | head -n 1)"
fi
PA=${PERFARENA_BIN:-perfarena}

# ---- 2. base image ----------------------------------------------------------------------
if [ $DRY_RUN = 1 ] || ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if [ -f "$ROOT/scripts/docker-env.sh" ]; then
    run_step base-image 300 "build the toy base image $BASE_IMAGE (if missing)" -- bash "$ROOT/scripts/docker-env.sh" up
  else
    [ $DRY_RUN = 1 ] || { record base-image fail 0 "$BASE_IMAGE missing and no scripts/docker-env.sh to build it"; }
  fi
else
  record base-image ok 0 "$BASE_IMAGE present"
fi

# ---- 3. nvidia-smi in a container ---------------------------------------------------------
run_step container 120 "nvidia-smi inside a container (--gpus all)" -- \
  "$DOCKER" run --rm --gpus all --network none --label perfarena.check=gpu "$BASE_IMAGE" nvidia-smi -L

# ---- 4. the toy example through the docker backend ----------------------------------------
# The toy suite with one GPU per attempt, and nvidia-smi printed by every attempt's server.
toy_gpu_suite() {
  local suite="$TOY/perfarena.toml"
  grep -q '^\[docker\]' "$suite" && { echo "the toy suite already has a [docker] section" >&2; return 1; }
  sed -i 's|^server = "|server = "nvidia-smi -L \&\& |' "$suite"
  printf '\n[docker]\ngpus = "all"\nshm_size = "1g"\n' >>"$suite"
}
toy_check_logs() {
  local hits
  hits=$(grep -rl "GPU 0:" "$TOY/.perfarena/runs" 2>/dev/null | wc -l)
  echo "server logs showing a GPU: $hits"
  [ "$hits" -gt 0 ]
}
run_step toy-create 60 "create the toy example" -- "$PA" -C "$TOY" demo --no-run
if [ $DRY_RUN = 1 ]; then
  run_step toy-suite 5 "toy suite: [docker] gpus = \"all\", nvidia-smi -L before the server" -- sed -i "s|^server = \"|server = \"nvidia-smi -L \&\& |" "$TOY/perfarena.toml"
else
  toy_gpu_suite && record toy-suite ok 0 "[docker] gpus = \"all\"" || record toy-suite fail 0 "could not edit the toy suite"
fi
run_step toy-images 240 "build the toy images (no push)" -- "$PA" -C "$TOY" images build --all --no-push
run_step toy-run 180 "run the toy example on the docker backend with GPUs" -- "$PA" -C "$TOY" run --backend docker --repeats 1 --seed 1
if [ $DRY_RUN = 1 ]; then
  run_step toy-logs 5 "nvidia-smi output in the attempts' server logs" -- grep -rl "GPU 0:" "$TOY/.perfarena/runs"
else
  run_step toy-logs 5 "nvidia-smi output in the attempts' server logs" -- toy_check_logs
fi

# ---- 5. one real serving attempt (optional) -------------------------------------------------
serve_project() {
  local model_dir=$1 image=$2 snapshot
  snapshot=$(ls -1 "$model_dir/snapshots" | head -n 1)
  [ -n "$snapshot" ] || { echo "no snapshot under $model_dir/snapshots" >&2; return 1; }
  mkdir -p "$SERVE/repo"
  git -C "$SERVE/repo" init -q -b main
  echo "parent" >"$SERVE/repo/README"; git -C "$SERVE/repo" add -A
  git -C "$SERVE/repo" -c user.name=gpu-check -c user.email=gpu-check@localhost commit -q -m parent
  echo "commit" >>"$SERVE/repo/README"; git -C "$SERVE/repo" add -A
  git -C "$SERVE/repo" -c user.name=gpu-check -c user.email=gpu-check@localhost commit -q -m commit
  local commit; commit=$(git -C "$SERVE/repo" rev-parse HEAD)
  local model="/models/m/snapshots/$snapshot"
  cat >"$SERVE/perfarena.toml" <<EOF
# gpu-check: one serving attempt of a local model with an existing vLLM image (both variants use it).
[repo]
path = "repo"
source_dir = "/vllm-workspace"
[images]
baseline = "$image"
human = "$image"
[bench]
server = "vllm serve $model --port {port} --max-model-len 1024 --enforce-eager --gpu-memory-utilization 0.5 || python3 -m vllm.entrypoints.openai.api_server --model $model --port {port} --max-model-len 1024 --enforce-eager --gpu-memory-utilization 0.5"
client = "if vllm bench serve --help >/dev/null 2>&1; then vllm bench serve --backend vllm --model $model --port {port} --dataset-name random --random-input-len 128 --random-output-len 32 --num-prompts 16; else python3 /vllm-workspace/benchmarks/benchmark_serving.py --backend vllm --model $model --port {port} --dataset-name random --random-input-len 128 --random-output-len 32 --num-prompts 16; fi"
timeout_s = 420
repeats = 1
[bench.env]
HF_HUB_OFFLINE = "1"
VLLM_NO_USAGE_STATS = "1"
[bench.readiness]
url = "http://127.0.0.1:{port}/health"
interval_ms = 1000
timeout_s = 300
[docker]
gpus = "all"
shm_size = "8g"
mounts = ["$model_dir:/models/m"]
harness_from = "image"
EOF
  printf '{"commit_hash": "%s", "has_serving": true}\n' "$commit" >"$SERVE/tasks.jsonl"
  "$PA" -C "$SERVE" tasks import "$SERVE/tasks.jsonl"
}
if [ $SERVING = 1 ]; then
  MODEL=$(find_model)
  IMAGE=""; [ $DRY_RUN = 1 ] || IMAGE=$(find_vllm_image)
  if [ $DRY_RUN = 1 ]; then
    echo "  serving:    model ${MODEL:-(none found)}; image: the first local image named *vllm* (or --vllm-image)"
    run_step serve-setup 30 "a one-task project using the vLLM image for both variants" -- "$PA" -C "$SERVE" tasks import "$SERVE/tasks.jsonl"
    run_step serve-run 450 "one serving attempt per variant (vllm serve + bench serve)" -- "$PA" -C "$SERVE" run --backend docker --repeats 1 --seed 1
  elif [ -z "$MODEL" ]; then
    record serving skip 0 "no small model in the Hugging Face cache (pass --model)"
  elif [ -z "$IMAGE" ]; then
    record serving skip 0 "no local image named *vllm* (pass --vllm-image)"
  else
    say "serving: model $MODEL, image $IMAGE"
    run_step serve-setup 30 "a one-task project using $IMAGE" -- serve_project "$MODEL" "$IMAGE" &&
      run_step serve-run 450 "one serving attempt per variant with $IMAGE" -- "$PA" -C "$SERVE" run --backend docker --repeats 1 --seed 1
  fi
else
  record serving skip 0 "--no-serving"
fi

summary
if [ $DRY_RUN = 0 ] && [ $KEEP = 0 ] && [ $FAILED = 0 ]; then rm -rf "$WORK"; elif [ $DRY_RUN = 0 ]; then echo "work dir kept: $WORK"; fi
exit $FAILED
