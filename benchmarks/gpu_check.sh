#!/usr/bin/env bash
# The whole GPU check of issue #11 in one command, sized for one device run (<= 8 min on an H200).
#
# Prepare here (PyPI reachable):   bash benchmarks/gpu_wheels.sh          # fills .whl/ (git-ignored)
# On the device (one `run` call):  command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540
# Dry run on a CPU machine:        GPU_CHECK_DEVICE=cpu GPU_CHECK_SMALL=1 OUT=/tmp/gpu-check bash benchmarks/gpu_check.sh
#
# Stages, each under its own time limit (a hang costs its stage, not the lease), in this order:
#   env       nvidia-smi, torch/CUDA versions
#   install   the carried wheels (--no-deps, into $GPU_CHECK_SITE) and animevid itself (editable, --no-deps)
#   tests     python -m pytest -m gpu
#   bench     python -m benchmarks --device cuda --only cuda,stages --cuda-compile without (generator
#             per size/batch/layout, fp16 vs fp32; decode, colour host vs device, libx264 1 vs N threads)
#   compile   python -m benchmarks --device cuda --only cuda --cuda-compile only (a separate stage: a
#             slow compilation cannot cost the eager figures)
#   e2e-720p  animevid stylize on generated 5 s and 20 s 720p clips with audio (benchmarks/gpu_e2e.py)
#   e2e-1080p the same on a 20 s 1080p clip, then with --devices cuda --workers 2 (chunked encoding)
#             and VideoOptions(encoders=2), each where this animevid has the option (else a note)
#   summary   check.json + summary.txt (benchmarks/gpu_summary.py)
# Everything goes to $OUT (at most 8 files come back): log.txt (with a "stage-result" line per
# stage), bench.json, bench.md, bench-compile.json, e2e-1280x720.json, e2e-1920x1080.json,
# check.json, summary.txt.
set -u -o pipefail
cd "$(dirname "$0")/.."

DEVICE=${GPU_CHECK_DEVICE:-cuda}
SMALL=${GPU_CHECK_SMALL:-0}
OUT=${OUT:-/tmp/gpu-check}
PY=${GPU_CHECK_PYTHON:-python3}
SITE=${GPU_CHECK_SITE:-/tmp/site}
SCALE=${GPU_CHECK_LIMIT_SCALE:-1}  # time limits x this (the dry run on a small CPU needs more)
mkdir -p "$OUT"
LOG="$OUT/log.txt"
: >"$LOG"
export PYTHONUNBUFFERED=1 PY SITE

# stage NAME SECONDS COMMAND...: run under `timeout`, log everything, record rc and seconds.
stage() {
  local name=$1 limit=$(( $2 * SCALE ))
  shift 2
  echo "== $name (limit ${limit} s): $* ==" >>"$LOG"
  local started=$SECONDS
  if declare -F "$1" >/dev/null; then  # a function of this script: `timeout` needs a program
    timeout -k 10 "$limit" bash -c "$(declare -f "$1"); $(printf '%q ' "$@")" >>"$LOG" 2>&1
  else
    timeout -k 10 "$limit" "$@" >>"$LOG" 2>&1
  fi
  local rc=$?
  local took=$(( SECONDS - started ))
  echo "stage-result $name rc=$rc s=$took limit=$limit" | tee -a "$LOG"
  return $rc
}

install() {
  if compgen -G ".whl/*.whl" >/dev/null; then
    local extra=()
    if [[ "$USE_SITE" != 1 ]]; then  # a dry run on another Python: install the 3.12 wheels to check them, use the venv's packages
      extra=(--python-version 3.12 --only-binary=:all:)
      echo "$("$PY" --version): the cp312 wheels are installed into $SITE to check them, not used"
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${extra[@]}" .whl/*.whl || return 1
    ls "$SITE"
  else
    echo "no .whl/ here (run benchmarks/gpu_wheels.sh where PyPI is reachable, carry .whl): using what is installed"
  fi
  # animevid.train lives in train/ (package-dir): an editable install maps it; no index, no build isolation offline.
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . || return 1
  "$PY" - <<'EOF'
import importlib
for name in ("av", "platformdirs", "google_crc32c", "animevid", "animevid.video", "animevid.colour", "animevid.train.synthetic_film"):
    module = importlib.import_module(name)
    print(name, getattr(module, "__version__", ""), getattr(module, "__file__", ""))
EOF
}

env_info() {
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,utilization.gpu --format=csv || echo "no nvidia-smi"
  "$PY" -c "import torch, os; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), 'cpus', os.cpu_count())"
}

USE_SITE=$("$PY" -c 'import sys; print(int(sys.version_info[:2] == (3, 12)))')  # the wheels are cp312
export USE_SITE
if [[ -d .whl && "$USE_SITE" == 1 ]]; then export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"; fi

if [[ "$SMALL" == 1 ]]; then
  SIZES=(64x48 128x96); SHORT=1; LONG=2
else
  SIZES=(1280x720 1920x1080); SHORT=5; LONG=20
fi

# bench NAME SECONDS ARGS...: a benchmarks run whose JSON (and markdown) land as $OUT/NAME.json (.md).
bench() {
  local name=$1 limit=$2
  shift 2
  rm -rf "$OUT/tmp-$name"
  stage "$name" "$limit" "$PY" -m benchmarks --device "$DEVICE" --out "$OUT/tmp-$name" "$@"
  local rc=$?
  for file in "$OUT/tmp-$name"/*.json; do [[ -f "$file" ]] && mv "$file" "$OUT/$name.json"; done
  for file in "$OUT/tmp-$name"/*.md; do [[ -f "$file" && "$name" == bench ]] && mv "$file" "$OUT/$name.md"; done
  rm -rf "$OUT/tmp-$name"
  return $rc
}

# Limits add up to 460 s (under 8 min); the figures expected take well under them.
stage env 10 env_info
stage install 25 install || echo "install failed: the stages below will say what is missing" | tee -a "$LOG"
stage tests 90 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/
bench bench 90 --only cuda,stages --cuda-compile without
bench bench-compile 85 --only cuda --cuda-compile only
# Two lengths at 720p (peaks flat in length); at 1080p the long clip, then the same with 2 worker
# processes on the GPU (chunked encoding: each its own libx264) where animevid has --workers.
stage "e2e-${SIZES[0]}" 60 "$PY" -m benchmarks.gpu_e2e --device "$DEVICE" --size "${SIZES[0]}" --seconds "$SHORT,$LONG" \
  --timeout $(( 40 * SCALE )) --json "$OUT/e2e-${SIZES[0]}.json"
stage "e2e-${SIZES[1]}" 90 "$PY" -m benchmarks.gpu_e2e --device "$DEVICE" --size "${SIZES[1]}" --seconds "$LONG" \
  --workers 2 --encoders 2 --timeout $(( 40 * SCALE )) --json "$OUT/e2e-${SIZES[1]}.json"
stage summary 10 "$PY" -m benchmarks.gpu_summary --out "$OUT"
cat "$OUT/summary.txt" 2>/dev/null
