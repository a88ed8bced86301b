#!/usr/bin/env bash
# One budgeted device call: fill the results store with real runs and bring them back as ONE archive.
#
#   OUT=$OUT bash benchmarks/gpu_report.sh          # then, here:  cifarnb merge <files_at>/results.tar.gz
#
# Steps: unpack staged data (.stage/part-*) if needed; print card, driver, torch, python; on CUDA, the fast-path
# self-test (benchmarks/gpu_selftest.py, ~1 min; stops the script with one line if a branch is broken);
# optionally the speed figures alone on the device (TIMING=1: benchmarks/speed.py); then `cifarnb sweep` over
# the sections in priority order, the first seed of every run before any second seed, WORKERS processes sharing
# the device, starting no run that cannot finish inside the budget. After every finished run the archive
# $OUT/results.tar.gz is rewritten (atomically) with every result file new relative to the committed results/
# (run.json, tables, arrays; never weights or checkpoints), so whatever cuts the call off, the finished runs
# come back. $OUT holds at most: results.tar.gz, gpu_report.log, and with TIMING=1 speed.json and histories.json.
#
# Environment (all optional but OUT):
#   OUT       where the archive and the log go
#   STORE     the store trained into (default: results-gpu/, seeded with a copy of the committed results/, so
#             finished runs are skipped; kept between calls on a warm machine, weights included)
#   PROFILE   quick | smoke | full (default quick)
#   SECTIONS  default: every section, in the order a GPU fills them (cifarnb.study.sections.SECTIONS)
#   SEEDS     default: the profile's seeds
#   BUDGET_S  wall seconds for the whole script, from its start (default 480)
#   WORKERS   runs at once on one device (default 4; see benchmarks/RESULTS.md for runs per hour against it)
#   DEVICE    auto | cpu | cuda (default auto)
#   SELFTEST  0 skips the self-test (e.g. when an earlier call on this machine ran it)
#   TIMING    1 measures ResNet18's seconds per epoch and the fast recipe's time to 94%, alone on the device
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder for results.tar.gz and gpu_report.log}"
started=$(date +%s)
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_report.log") 2>&1
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export CIFARNB_DATA=${CIFARNB_DATA:-data}
STORE=${STORE:-results-gpu}
PROFILE=${PROFILE:-quick}
SECTIONS=${SECTIONS:-fastresnet9 batchnorm feature_maps optimize_resnet18 model_zoo}
BUDGET_S=${BUDGET_S:-480}
WORKERS=${WORKERS:-4}
DEVICE=${DEVICE:-auto}
left() { echo $(( BUDGET_S - ($(date +%s) - started) )); }

# --- data: staged parts are joined once; a warm machine keeps data/ between calls ---------------------------
if [ ! -d "$CIFARNB_DATA/cifar-10-batches-py" ] && ls .stage/part-* >/dev/null 2>&1; then
    stage_tool=$(ls .stage/stage-cifar10 ../shared/tools/stage-cifar10 2>/dev/null | head -n 1)
    [ -n "$stage_tool" ] && $PY "$stage_tool" unpack .stage "$CIFARNB_DATA"
fi
if [ ! -d "$CIFARNB_DATA/cifar-10-batches-py" ]; then
    echo "gpu_report: no CIFAR-10 at $CIFARNB_DATA/cifar-10-batches-py: stage it (.stage/part-*) or set CIFARNB_DATA"
    exit 2
fi
# The device has no network and no build tools to install with: run from the checkout.
$PY -c "import cifarnb" 2>/dev/null || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# --- what runs where --------------------------------------------------------------------------------------
echo "== gpu_report $(date -u +%Y-%m-%dT%H:%M:%SZ): profile $PROFILE, sections $SECTIONS, workers $WORKERS, budget ${BUDGET_S} s"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
$PY -c "import platform, torch; print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda, '| device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"

# --- the fast-path self-test (CUDA only; it says so and passes elsewhere) ------------------------------------
if [ "${SELFTEST:-1}" != "0" ]; then
    if ! timeout 150 $PY benchmarks/gpu_selftest.py; then
        echo "gpu_report: stopping: a fast-path branch is broken on this device (the FAILED line above names it)"
        exit 1
    fi
fi

# --- the store: a copy of the committed results, so finished runs are skipped ------------------------------
mkdir -p "$STORE"
cp -rn results/. "$STORE"/

# --- speed figures, alone on the device (TIMING=1) ---------------------------------------------------------
if [ "${TIMING:-0}" = "1" ]; then
    timeout $(( $(left) / 3 )) $PY benchmarks/speed.py --entries "resnet18:fast_resnet18@compile=false" \
        --steps 40 --warmup-steps 5 --train "fastresnet9:fast" --seeds 0 --target 94 --out "$OUT" \
        || echo "gpu_report: speed.py stopped with status $?"
fi

# --- the sweep ---------------------------------------------------------------------------------------------
seeds_args=()
[ -n "${SEEDS:-}" ] && read -r -a seeds_args <<< "--seeds $SEEDS"
# A little of the budget stays for the final archive and the summary.
# shellcheck disable=SC2086
$PY -m cifarnb.cli sweep --section $SECTIONS --profile "$PROFILE" --results "$STORE" --device "$DEVICE" \
    --workers "$WORKERS" --budget-s $(( $(left) - 10 )) --archive "$OUT/results.tar.gz" --baseline results \
    "${seeds_args[@]}"
status=$?
echo "== gpu_report: $(( $(date +%s) - started )) s wall, sweep exit status $status; files in $OUT:"
ls -l "$OUT"
# The budget stopping new runs is a normal end; a failed run is not.
exit $status
