#!/usr/bin/env bash
# One-shot GPU check of lasium, sized for one GPU and one ~10-minute call:
#   1. fit the bundled-candidate GAN and VAE with lasium-fit (wall-clock budgets) and export them in bundled form;
#   2. benchmarks/bench_gen.py (1e6 tasks with the freshly fitted GAN; it deletes its shards);
#   3. benchmarks/bench_train.py, then benchmarks/bench_eval.py (test tasks adapted per vmapped call);
#   3b. lasium-repro epoch-curve: LASIUM-N ProtoNets validation accuracy for each GAN snapshot the fit kept
#       (epochs 0, 10, 50, 200: lasium-fit --keep-epochs), into results/accuracy-vs-gan-epochs.*;
#   4. the Omniglot reproduction (lasium-repro omniglot) with the fitted GAN, in the time that is left.
# Every figure goes to OUTDIR as JSON; OUTDIR ends with at most 8 files (the GPU tool's limit):
#   results.tar.gz   results/ (omniglot.md/.json, PNGs), bundled/ (omniglot-gan, omniglot-vae), figures/, logs/
#   summary.json     every stage's status and seconds, and the headline figures of each stage
#   gpu_check.log    this script's output
#   bench_gen.json, bench_train.json, repro.json (copies of the figures, for a quick look)
#
# Usage: benchmarks/gpu_check.sh [OUTDIR] [--quick]      (OUTDIR defaults to $OUT, else ./gpu_check_out)
# --quick: tiny sizes, for a CPU smoke run of the whole script (a few minutes).
# Offline: needs only what is installed (torch, numpy, h5py, pillow, click, safetensors, tqdm, webdataset;
# matplotlib for the charts); lasium is this checkout, installed in place without dependencies or network when the
# Python at hand does not already import it from here (see "import" below).
# Sizes (environment): TOTAL_SECONDS (570 = 9.5 min), GAN_MINUTES (1.5), VAE_MINUTES (0.5), BENCH_GEN_TASKS (5e5),
# BENCH_GEN_TIMEOUT (110), BENCH_TRAIN_TIMEOUT (80), BENCH_EVAL_TIMEOUT (40), CURVE_TIMEOUT (150), REPRO_MIN_SECONDS (60), FID (0: 1 = measure Fréchet distances
# of both models before export), REPRO_FIRST (0: 1 = run the reproduction right after the fits and keep
# BENCH_GEN_TIMEOUT + BENCH_TRAIN_TIMEOUT for the benchmarks afterwards), WORK (scratch, default /tmp/lasium_gpu_check).
# Plan, from the stage times of one H200 run (2026-12-04, results/gpu-h200/): setup ~15 s; fit-gan = its minutes + ~22 s
# (2 min: 207 epochs in 130 s), fit-vae = its minutes + ~18 s, exports ~10 s; bench_gen ~80 s at 5e5 tasks (the plain
# 1e6-task run alone took 76 s); bench_train's parts are kept as each ends (batch norm, precision, input pipeline ended
# inside 80 s); bench_eval ~30 s; epoch-curve ~36 s per snapshot (0, 10, 50 and the fit's end: ~145 s). That fills the
# 570 s, so the reproduction (~6.5 min on its own: lasium-repro omniglot --plan) runs only with REPRO_FIRST=1 or a
# larger TOTAL_SECONDS; its guard runs the rows that fit.
set -uo pipefail  # not -e: a failing stage is recorded and the next one runs

QUICK=0
OUTDIR=""
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
    -*) echo "error: unknown option $arg (use [OUTDIR] [--quick])" >&2; exit 2 ;;
    *) OUTDIR="$arg" ;;
  esac
done
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="$(mkdir -p "${OUTDIR:-${OUT:-./gpu_check_out}}" && cd "${OUTDIR:-${OUT:-./gpu_check_out}}" && pwd)"
PY="${PYTHON:-python3}"
WORK="${WORK:-/tmp/lasium_gpu_check}"
if [ "$QUICK" = 1 ]; then
  TOTAL_SECONDS="${TOTAL_SECONDS:-420}"; GAN_MINUTES="${GAN_MINUTES:-0.3}"; VAE_MINUTES="${VAE_MINUTES:-0.2}"
  BENCH_GEN_TIMEOUT="${BENCH_GEN_TIMEOUT:-90}"; BENCH_TRAIN_TIMEOUT="${BENCH_TRAIN_TIMEOUT:-60}"; REPRO_MIN_SECONDS="${REPRO_MIN_SECONDS:-30}"
  BENCH_EVAL_TIMEOUT="${BENCH_EVAL_TIMEOUT:-60}"; BENCH_EVAL_ARGS=(--quick)
  CURVE_TIMEOUT="${CURVE_TIMEOUT:-240}"; CURVE_ARGS=(--quick); GAN_KEEP="0"
  FIT_EXTRA=(--limit 256 --epochs 1); BENCH_GEN_ARGS=(--quick --n-tasks 48); BENCH_TRAIN_ARGS=(--quick); REPRO_ARGS=(--sizes quick)
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # smoke run on a small shared CPU: no OpenMP spin-waiting
else
  TOTAL_SECONDS="${TOTAL_SECONDS:-570}"; GAN_MINUTES="${GAN_MINUTES:-1.5}"; VAE_MINUTES="${VAE_MINUTES:-0.5}"
  BENCH_GEN_TIMEOUT="${BENCH_GEN_TIMEOUT:-110}"; BENCH_TRAIN_TIMEOUT="${BENCH_TRAIN_TIMEOUT:-80}"; REPRO_MIN_SECONDS="${REPRO_MIN_SECONDS:-60}"
  FIT_EXTRA=(--epochs 300); BENCH_GEN_ARGS=(--n-tasks "${BENCH_GEN_TASKS:-5e5}"); BENCH_TRAIN_ARGS=(); REPRO_ARGS=()
  BENCH_EVAL_TIMEOUT="${BENCH_EVAL_TIMEOUT:-40}"; BENCH_EVAL_ARGS=(--chunks 16,64,250,500 --tasks 500 --steps 10 --reps 2)
  CURVE_TIMEOUT="${CURVE_TIMEOUT:-160}"; CURVE_ARGS=(); GAN_KEEP="0,10,50"
fi
FID="${FID:-0}"
START=$(date +%s)
DEADLINE=$((START + TOTAL_SECONDS))

rm -rf "$WORK"
mkdir -p "$WORK"/{fit,bundled,figures,logs,results} "$OUTDIR"
rm -f "$OUTDIR"/{results.tar.gz,summary.json,gpu_check.log,bench_gen.json,bench_train.json,repro.json}
exec > >(tee -a "$OUTDIR/gpu_check.log") 2>&1
TEE_PID=$!
STAGES="$WORK/stages.jsonl"
: > "$STAGES"

now() { date +%s; }
left() { echo $((DEADLINE - $(now))); }
record() {  # name status seconds note
  "$PY" -c 'import json,sys; print(json.dumps({"name": sys.argv[1], "status": sys.argv[2], "seconds": float(sys.argv[3]), "note": sys.argv[4]}))' \
    "$1" "$2" "$3" "${4:-}" >> "$STAGES"
}
stage() {  # stage NAME TIMEOUT_SECONDS command...: run under a timeout capped by the deadline; record the outcome
  local name="$1" limit="$2"; shift 2
  local remaining; remaining=$(( $(left) - 25 ))  # 25 s kept for the summary and packing
  [ "$remaining" -lt "$limit" ] && limit=$remaining
  if [ "$limit" -lt 5 ]; then
    echo "== $name: skipped (time budget used up)"; record "$name" skipped 0 "time budget used up"; return 1
  fi
  echo "== $name (limit ${limit}s): $*"
  local t0 rc; t0=$(date +%s%N)
  timeout --signal=TERM --kill-after=10 "$limit" "$@"; rc=$?
  local secs; secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  if [ $rc -eq 0 ]; then record "$name" ok "$secs"; echo "== $name: ok in ${secs}s"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then record "$name" timeout "$secs" "killed after ${limit}s"; echo "== $name: TIMEOUT after ${secs}s"
  else record "$name" failed "$secs" "exit $rc"; echo "== $name: FAILED (exit $rc) after ${secs}s"; fi
  return $rc
}

echo "lasium gpu_check: repo $REPO, out $OUTDIR, work $WORK, quick=$QUICK, budget ${TOTAL_SECONDS}s, $(date)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# --- import: lasium from this checkout. Commands run from $WORK (outside the checkout), so the checkout is installed
# in place (editable, no dependencies, no network) unless this Python already imports lasium.repro from it.
FROM_HERE='import os, sys, lasium.repro; sys.exit(0 if os.path.realpath(lasium.repro.__path__[0]).startswith(os.path.realpath(sys.argv[1])) else 1)'
if ! (cd /tmp && "$PY" -c "$FROM_HERE" "$REPO" 2>/dev/null); then
  echo "installing lasium from $REPO in place (pip install --no-deps --no-build-isolation -e)"
  "$PY" -m pip install --quiet --no-deps --no-build-isolation --no-index -e "$REPO" \
    || { echo "error: cannot install lasium from $REPO (pip install -e $REPO)"; exit 1; }
fi
cd "$WORK"
"$PY" -c 'import lasium.generate.job.cli, lasium.train.cli, lasium.evaluate.cli, lasium.shards.cli, lasium.repro.cli; import lasium.repro as r; print("lasium.repro from", r.__path__[0])' \
  || { echo "error: cannot import lasium from $REPO"; exit 1; }
REPRO=("$PY" -m lasium.repro.cli)  # lasium-repro, through this Python
if [ -z "${LASIUM_DATA:-}" ]; then
  for candidate in "$REPO/shared/data" "$REPO/../shared/data"; do
    [ -f "$candidate/omniglot/images_background.zip" ] && export LASIUM_DATA="$(cd "$candidate" && pwd)" && break
  done
fi
echo "LASIUM_DATA=${LASIUM_DATA:-unset}"
stage data-cache 120 "$PY" -c 'from lasium.data import load_split; [load_split("omniglot", s) for s in ("train", "val", "test")]' \
  || echo "warning: Omniglot did not load; stages that need it will fail"

# --- 1. fit the bundled candidates and export them
GAN="$WORK/fit/omniglot-gan"; VAE="$WORK/fit/omniglot-vae"
FIT=("$PY" -c 'import sys; sys.argv[0] = "lasium-fit"; from lasium.generate.models.fit_cli import main; main()')
seconds_of() { awk -v m="$1" -v extra="$2" 'BEGIN { printf "%d", m * 60 + extra }'; }
stage fit-gan "$(seconds_of "$GAN_MINUTES" 90)" "${FIT[@]}" --model gan --dataset omniglot --max-minutes "$GAN_MINUTES" \
  "${FIT_EXTRA[@]}" --keep-epochs "$GAN_KEEP" --seed 0 --out "$GAN" --quiet
stage fit-vae "$(seconds_of "$VAE_MINUTES" 60)" "${FIT[@]}" --model vae --dataset omniglot --max-minutes "$VAE_MINUTES" \
  "${FIT_EXTRA[@]}" --seed 0 --out "$VAE" --quiet
for model in gan vae; do
  ckpt="$WORK/fit/omniglot-$model"
  [ -f "$ckpt/model.safetensors" ] || continue
  if [ "$FID" = 1 ]; then
    stage "fid-$model" 90 "$PY" "$REPO/benchmarks/bench_fid.py" --generator "$ckpt" --json-out "$WORK/figures/fid-$model.json"
  fi
  stage "export-$model" 60 "$PY" -c 'import json, os, sys
from lasium.generate import export_bundled
ckpt, name, fid, dest = sys.argv[1:5]
quality = json.load(open(fid)) if os.path.isfile(fid) else None
print("exported", export_bundled(ckpt, name, quality=quality, dest_root=dest))' "$ckpt" "omniglot-$model" "$WORK/figures/fid-$model.json" "$WORK/bundled"
done
GENERATOR="$GAN"
[ -f "$GAN/model.safetensors" ] || GENERATOR="omniglot-gan"  # fall back to the bundled one if the fit failed

run_repro() {  # run_repro BUDGET_SECONDS
  local budget="$1"
  if [ "$budget" -ge "$REPRO_MIN_SECONDS" ]; then
    stage repro $((budget + 20)) "${REPRO[@]}" omniglot "${REPRO_ARGS[@]}" --generator "$GENERATOR" \
      --budget-seconds "$budget" --work "$WORK/repro" --results "$WORK/results" --overwrite
  else
    echo "== repro: skipped (${budget}s left, below REPRO_MIN_SECONDS=$REPRO_MIN_SECONDS)"; record repro skipped 0 "only ${budget}s left"
  fi
}
if [ "${REPRO_FIRST:-0}" = 1 ]; then
  run_repro $(( $(left) - 35 - BENCH_GEN_TIMEOUT - BENCH_TRAIN_TIMEOUT - BENCH_EVAL_TIMEOUT ))
fi

# --- 2. generation benchmark, 3. training benchmark
stage bench-gen "$BENCH_GEN_TIMEOUT" "$PY" "$REPO/benchmarks/bench_gen.py" --generator "$GENERATOR" "${BENCH_GEN_ARGS[@]}" \
  --out "$WORK/bench_gen_shards" --json-out "$WORK/figures/bench_gen.json"
rm -rf "$WORK/bench_gen_shards"
if [ -f "$REPO/benchmarks/bench_train.py" ]; then
  stage bench-train "$BENCH_TRAIN_TIMEOUT" "$PY" "$REPO/benchmarks/bench_train.py" "${BENCH_TRAIN_ARGS[@]}" --json-out "$WORK/figures/bench_train.json"
else
  echo "== bench-train: skipped (benchmarks/bench_train.py not in this checkout)"; record bench-train skipped 0 "benchmarks/bench_train.py missing"
fi

stage bench-eval "$BENCH_EVAL_TIMEOUT" "$PY" "$REPO/benchmarks/bench_eval.py" "${BENCH_EVAL_ARGS[@]}" \
  --json-out "$WORK/figures/bench_eval.json"

# accuracy against GAN training: LASIUM-N ProtoNets validation accuracy for each GAN snapshot the fit kept (the
# fit's config.json says it is a GAN: accuracy-vs-gan-epochs.*)
if [ -f "$GAN/model.safetensors" ]; then
  stage epoch-curve "$CURVE_TIMEOUT" "${REPRO[@]}" epoch-curve "${CURVE_ARGS[@]}" --fit "$GAN" \
    --work "$WORK/epoch-curve" --results "$WORK/results"
else
  echo "== epoch-curve: skipped (no fitted GAN)"; record epoch-curve skipped 0 "no fitted GAN"
fi

# --- 4. the reproduction, in what is left (its own guard skips rows that no longer fit and always writes the page)
if [ "${REPRO_FIRST:-0}" != 1 ]; then
  run_repro $(( $(left) - 35 ))
fi

# --- summary and packing
cp -r "$WORK/repro/logs" "$WORK/logs/repro" 2>/dev/null
for model in gan vae; do cp "$WORK/fit/omniglot-$model/losses.jsonl" "$WORK/logs/fit-$model-losses.jsonl" 2>/dev/null; done
"$PY" - "$WORK" "$OUTDIR" "$START" "$QUICK" <<'EOF'
import json, os, sys, time
work, outdir, start, quick = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
summary = {"quick": quick, "total_seconds": round(time.time() - start, 1),
           "stages": [json.loads(line) for line in open(os.path.join(work, "stages.jsonl")) if line.strip()]}
try:
    import torch
    summary["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    summary["torch"] = torch.__version__
except Exception as exc:  # the summary must be written whatever happened
    summary["device"] = f"unknown ({exc})"
for model in ("gan", "vae"):
    cfg = load(os.path.join(work, "fit", f"omniglot-{model}", "config.json")) or {}
    keep = ("epochs_done", "train_seconds", "stopped_by_time_budget", "final_losses", "images_per_second", "device", "command")
    summary[f"fit_{model}"] = {k: cfg[k] for k in keep if k in cfg}
    summary[f"fid_{model}"] = load(os.path.join(work, "figures", f"fid-{model}.json"))
    summary[f"bundled_{model}"] = os.path.isfile(os.path.join(work, "bundled", f"omniglot-{model}", "model.safetensors"))
summary["bench_gen"] = load(os.path.join(work, "figures", "bench_gen.json"))
summary["bench_train"] = load(os.path.join(work, "figures", "bench_train.json"))
summary["bench_eval"] = load(os.path.join(work, "figures", "bench_eval.json"))
summary["epoch_curve"] = {}  # generator kind -> its curve's points (lasium-repro epoch-curve)
for kind in ("gan", "vae"):
    curve = load(os.path.join(work, "results", f"accuracy-vs-{kind}-epochs.json"))
    if curve:
        keep = ("epochs", "status", "val", "sigma", "frechet_distance")
        summary["epoch_curve"][kind] = [{k: r.get(k) for k in keep} for r in curve["rows"]]
repro = load(os.path.join(work, "results", "omniglot.json"))
if repro:
    summary["repro"] = {"label": repro.get("label"), "wall_seconds": repro.get("wall_seconds"),
                        "rows": [{k: r.get(k) for k in ("key", "status", "eval", "train", "seconds")} for r in repro["rows"]],
                        "stages": [{k: s.get(k) for k in ("name", "status", "seconds", "note")} for s in repro["stages"]]}
with open(os.path.join(outdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
for name in ("bench_gen", "bench_train"):
    if summary.get(name) is not None:
        with open(os.path.join(outdir, f"{name}.json"), "w") as f:
            json.dump(summary[name], f, indent=2)
if repro:
    with open(os.path.join(outdir, "repro.json"), "w") as f:
        json.dump(repro, f, indent=2)
EOF
tar -czf "$OUTDIR/results.tar.gz" -C "$WORK" results bundled figures logs
size=$(stat -c %s "$OUTDIR/results.tar.gz")
if [ "$size" -gt 16000000 ]; then  # the GPU tool returns files up to 16 MiB: drop the logs first
  tar -czf "$OUTDIR/results.tar.gz" -C "$WORK" results bundled figures
fi
echo "gpu_check done in $(( $(now) - START ))s: $(ls "$OUTDIR" | tr '\n' ' ')"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null  # let tee finish the log before the script ends
