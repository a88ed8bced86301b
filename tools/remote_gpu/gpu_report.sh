#!/usr/bin/env bash
# The device calls of a GPU session, each beside a part of the data (tools/remote_gpu/slot_plan.py): the decisions
# first (no data needed), then the compile ahead, then the sweep that fills the results store and brings it back as
# ONE archive.
#
#   OUT=$OUT bash tools/remote_gpu/gpu_report.sh probe  # call 1: self-test if due, then probe.py --decide (<= 90 s)
#   OUT=$OUT bash tools/remote_gpu/gpu_report.sh warm   # middle calls: warm.py (compile ahead), then the families
#   OUT=$OUT bash tools/remote_gpu/gpu_report.sh        # last call ("sweep"); then, here: cifarnb merge the archive
#   bash tools/remote_gpu/gpu_report.sh rehearse        # here: the session's calls (slot_plan.py) on the CPU
#
# Every step prints card, driver, torch, python; probe and sweep run the fast-path self-test
# (benchmarks/gpu_selftest.py, ~2 min: each fast path against eager) only when the fast path changed since the
# checks recorded in benchmarks/selftest.json ($OUT/selftest.json: commit it there; the sweep keeps what failed
# off, model by model); a broken branch without a fallback stops the script with one line.
# probe: benchmarks/probe.py --decide on synthetic images (each first-section model's fast path, workers, MPS),
# $OUT/probe.json rewritten after every record. warm: tools/remote_gpu/warm.py compiles the graphs the sweep's first
# section will use into .compile-cache/ (TORCHINDUCTOR_CACHE_DIR; a warm machine keeps it), then the probe's families
# section with what is left of the budget, extending the card's committed probe ($OUT/probe.json).
# sweep: unpack staged data (.stage/part-*) if needed; optionally the speed figures alone on the device
# (TIMING=1: benchmarks/speed.py); then `cifarnb sweep` (sweep_call.py) over the sections in priority order,
# the first seed of every run before any second seed, WORKERS processes sharing the device (with MPS if chosen),
# starting no run that cannot finish inside the budget. After every finished run the archive $OUT/results.tar.gz is
# rewritten (atomically) with every result file new relative to the committed results/ (run.json, tables, arrays;
# never weights or checkpoints), so whatever cuts the call off, the finished runs come back.
# $OUT holds at most 6 files (a device call returns 8): gpu_report.log, ledger.json (where the call's seconds went:
# tools/remote_gpu/ledger.py), selftest.json, and probe.json (probe) or results.tar.gz with TIMING=1's speed.json
# and histories.json (sweep).
#
# Environment (all optional but OUT):
#   OUT       where the files go
#   STORE     the store trained into (default: results-gpu/, seeded with a copy of the committed results/, so
#             finished runs are skipped; kept between calls on a warm machine, weights included)
#   PROFILE   quick | smoke | full (default quick)
#   SECTIONS  default: every section, in the order a GPU fills them (cifarnb.study.sections.SECTIONS)
#   SEEDS     default: the profile's seeds
#   BUDGET_S  wall seconds for the whole script, from its start (default 480)
#   WORKERS   runs at once on one device, or auto (default): the probe's choice (`probe.py --choose`: the newest
#             benchmarks/probe-<card>-<date>.json of this card, which also says whether to start MPS), else 4
#   MPS       1 starts the MPS daemon for the sweep (WORKERS=auto sets it from the probe)
#   DEVICE    auto | cpu | cuda (default auto)
#   SELFTEST  auto (default): only when the fast path changed since its recorded pass; 1: always; 0: never
#   COMMIT    the commit the checkout is at (default: git's HEAD, where git is there), named by a recorded pass
#   TIMING    1 measures ResNet18's seconds per epoch and the fast recipe's time to 94%, alone on the device
#   PROBE_ARGS  arguments for benchmarks/probe.py in the probe step (default --decide; e.g. "--cpu --decide", or
#             "--sections resnet18_eager workers"); in the warm step they follow "--sections families --extend auto"
#   FAST_PATHS  auto (default): each model's fast path from the card's probe and self-test (cifarnb sweep --fast-paths)
set -uo pipefail
cd "$(dirname "$0")/../.."  # the checkout's root
STEP=${1:-sweep}
case "$STEP" in
    probe|warm|sweep) ;;
    rehearse) exec "${PYTHON:-python3}" tools/remote_gpu/rehearse.py "${@:2}" ;;  # every call, here on the CPU
    *) echo "gpu_report: the step is probe, warm, sweep (the default) or rehearse, not '$STEP'"; exit 2 ;;
esac
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
WORKERS=${WORKERS:-auto}
MPS=${MPS:-0}
DEVICE=${DEVICE:-auto}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
FIRST_SECTION=${SECTIONS%% *}
# Compiled kernels (inductor, triton) in an ignored folder of the checkout: a warm machine keeps it between calls.
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$PWD/.compile-cache}
export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-$TORCHINDUCTOR_CACHE_DIR/triton}
left() { echo $(( BUDGET_S - ($(date +%s) - started) )); }
until_budget() { local seconds; seconds=$(left); echo $(( seconds > 1 ? seconds : 1 )); }  # a timeout's argument
# The ledger ($OUT/ledger.json, tools/remote_gpu/ledger.py): each step marks its start; at the exit, whatever ends the
# call, the marks and the runs it trained become seconds by phase, training FLOPs and MFU.
MARKS=$(mktemp)
SWEEP_LEDGER="$MARKS.sweep.json"
mark() { echo "$1 $(date +%s.%N)" >> "$MARKS"; }
mark start
MPS_STARTED=0
on_exit() {
    [ "$MPS_STARTED" = "1" ] && echo quit | nvidia-cuda-mps-control
    mark end
    card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
    $PY tools/remote_gpu/ledger.py --marks "$MARKS" --store "$STORE" --since "$started" --sweep "$SWEEP_LEDGER" \
        --card "${card:-cpu}" --out "$OUT/ledger.json" \
        || echo "gpu_report: no ledger (tools/remote_gpu/ledger.py stopped with status $?)"
    rm -f "$MARKS" "$SWEEP_LEDGER"
}
trap on_exit EXIT

# The device has no network and no build tools to install with: run from the checkout.
$PY -c "import cifarnb" 2>/dev/null || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# What the device lacks (pydantic, for run.json's schema) travels as wheels in .device-wheels/
# (tools/remote_gpu/device_packages.sh), unpacked once into .device-packages/ (a warm machine keeps it). Only where
# pydantic is not installed: those wheels are built for the device's Python alone.
if ! $PY -c "import pydantic" 2>/dev/null && [ -d .device-wheels ]; then
    if [ ! -d .device-packages ]; then
        for wheel in .device-wheels/*.whl; do $PY -m zipfile -e "$wheel" .device-packages.partial; done
        mv .device-packages.partial .device-packages
    fi
    export PYTHONPATH="$PWD/.device-packages${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ "$STEP" = "sweep" ] && ! $PY -c "import pydantic" 2>/dev/null; then
    echo "gpu_report: pydantic is missing: make .device-wheels here" \
        "(bash tools/remote_gpu/device_packages.sh) and carry it"
    exit 2
fi

# --- what runs where --------------------------------------------------------------------------------------
echo "== gpu_report $STEP $(date -u +%Y-%m-%dT%H:%M:%SZ) at commit $COMMIT: profile $PROFILE, budget ${BUDGET_S} s"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
$PY -c "import platform, torch; print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda, '| device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"

# --- the fast-path self-test (CUDA only; it says so and passes elsewhere) ------------------------------------
selftest=(timeout 150 "$PY" benchmarks/gpu_selftest.py --record "$OUT/selftest.json" --commit "$COMMIT"
          --first-section "$FIRST_SECTION" --budget-s 120)
case "${SELFTEST:-auto}" in
    0) echo "gpu_selftest: skipped (SELFTEST=0)" ;;
    1) ;;
    *) selftest+=(--unless-recorded benchmarks/selftest.json) ;;
esac
# Rehearsals: SELFTEST_CPU=1 runs the checks a CPU can; SELFTEST_BREAK="compiled ..." makes those checks fail.
[ "${SELFTEST_CPU:-0}" = "1" ] && selftest+=(--cpu)
# shellcheck disable=SC2206
[ -n "${SELFTEST_BREAK:-}" ] && selftest+=(--break $SELFTEST_BREAK)
mark self-test
# The warm step's calls come after call 1's self-test: its record is in the tree by then (slot_plan.py).
if [ "$STEP" != "warm" ] && [ "${SELFTEST:-auto}" != "0" ] && ! "${selftest[@]}"; then
    echo "gpu_report: stopping: a branch without a fallback is broken on this device (the FAILED line above names it)"
    exit 1
fi

# --- probe: throughput on synthetic images, no data needed ---------------------------------------------------
# A later slot whose card's probe (committed, this torch) already holds the decisions does the warm step's work.
if [ "$STEP" = "probe" ]; then
    mark probe
    # shellcheck disable=SC2086
    if "$PY" benchmarks/probe.py --decided --first-section "$FIRST_SECTION" ${PROBE_ARGS:---decide}; then
        STEP=warm
        BUDGET_S=$(( $(date +%s) - started + ${WARM_S:-60} ))
    fi
fi
if [ "$STEP" = "probe" ]; then
    mark probe
    # shellcheck disable=SC2086
    timeout "$(until_budget)" "$PY" benchmarks/probe.py --out "$OUT/probe.json" \
        --first-section "$FIRST_SECTION" ${PROBE_ARGS:---decide}
    status=$?
    echo "== gpu_report probe: $(( $(date +%s) - started )) s wall, probe exit status $status; files in $OUT:"
    ls -l "$OUT"
    exit $status
fi

# --- how many processes share the device, and MPS: the probe's choice ---------------------------------------
if [ "$WORKERS" = "auto" ]; then
    if choice=$($PY benchmarks/probe.py --choose); then
        read -r WORKERS MPS <<< "$choice"
    else
        WORKERS=4
        echo "gpu_report: no probe of this card to choose from: $WORKERS workers, no MPS"
    fi
fi

# --- warm: compile ahead what the sweep's first section runs compiled, then time the other families ----------
if [ "$STEP" = "warm" ]; then
    mark "compile/warm-up"
    timeout "$(until_budget)" "$PY" tools/remote_gpu/warm.py --first-section "$FIRST_SECTION" \
        --profile "$PROFILE" --device "$DEVICE" --workers "$WORKERS" --budget-s "$(( $(left) / 2 ))" \
        || echo "gpu_report: warm.py stopped with status $?"
    mark probe
    more=${PROBE_ARGS:-}
    # shellcheck disable=SC2086
    timeout "$(until_budget)" "$PY" benchmarks/probe.py --out "$OUT/probe.json" \
        --sections families --extend auto --budget-s "$(( $(left) - 5 ))" ${more/--decide/}
    echo "== gpu_report warm: $(( $(date +%s) - started )) s wall; files in $OUT:"
    ls -l "$OUT"
    exit 0
fi

# --- data: staged parts are joined once; a warm machine keeps data/ between calls ---------------------------
mark unpack
if [ ! -d "$CIFARNB_DATA/cifar-10-batches-py" ] && ls .stage/part-* >/dev/null 2>&1; then
    stage_tool=$(ls .stage/stage-cifar10 ../shared/tools/stage-cifar10 2>/dev/null | head -n 1)
    [ -n "$stage_tool" ] && $PY "$stage_tool" unpack .stage "$CIFARNB_DATA"
fi
if [ ! -d "$CIFARNB_DATA/cifar-10-batches-py" ]; then
    echo "gpu_report: no CIFAR-10 at $CIFARNB_DATA/cifar-10-batches-py: stage it (.stage/part-*) or set CIFARNB_DATA"
    exit 2
fi

# --- the store: a copy of the committed results, so finished runs are skipped ------------------------------
mark "store copy"
mkdir -p "$STORE"
cp -rn results/. "$STORE"/

# --- speed figures, alone on the device (TIMING=1) ---------------------------------------------------------
if [ "${TIMING:-0}" = "1" ]; then
    mark "speed figures"
    timeout $(( $(left) / 3 )) $PY benchmarks/speed.py --entries "resnet18:fast_resnet18@compile=false" \
        --steps 40 --warmup-steps 5 --train "fastresnet9:fast" --seeds 0 --target 94 --out "$OUT" \
        || echo "gpu_report: speed.py stopped with status $?"
fi

if [ "$MPS" = "1" ]; then
    if nvidia-cuda-mps-control -d; then
        MPS_STARTED=1
        echo "gpu_report: MPS daemon started"
    else
        echo "gpu_report: the MPS daemon did not start; the sweep shares the device without it"
    fi
fi

# --- the sweep ---------------------------------------------------------------------------------------------
echo "== sweep: sections $SECTIONS, $WORKERS workers, MPS $MPS"
seeds_args=()
[ -n "${SEEDS:-}" ] && read -r -a seeds_args <<< "--seeds $SEEDS"
# A little of the budget stays for the final archive and the summary.
# shellcheck disable=SC2086
mark sweep
# `cifarnb sweep` with the sweep's own seconds recorded (sweep_call.py: its wall, the archive's rewrites).
$PY tools/remote_gpu/sweep_call.py --ledger "$SWEEP_LEDGER" --section $SECTIONS --profile "$PROFILE" \
    --results "$STORE" --device "$DEVICE" --workers "$WORKERS" --budget-s $(( $(left) - 10 )) \
    --archive "$OUT/results.tar.gz" --baseline results --fast-paths "${FAST_PATHS:-auto}" "${seeds_args[@]}"
status=$?
echo "== gpu_report: $(( $(date +%s) - started )) s wall, sweep exit status $status; files in $OUT:"
ls -l "$OUT"
# The budget stopping new runs is a normal end; a failed run is not.
exit $status
