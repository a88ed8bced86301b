#!/usr/bin/env bash
# The whole GPU check, on a fresh GPU machine, in <= 8 minutes:
#   1. the speed table (benchmarks/speed.py): each recipe's images/s and s/epoch beside the report's torchvision
#      pipeline measured in the same run;
#   2. FastResNet9, `fast` recipe, 5 seeds on the full data: test accuracy (all 10,000 images and the exact rows
#      0-999), training seconds, time to 94%, compile/warm-up seconds apart;
#   3. ResNet18 at the report's settings on the fast path (`fast_resnet18`): s/epoch over 10 epochs (report:
#      21.96 s/epoch; target <= 1.0) and its 10-epoch accuracy beside the report's 86.16%;
#   4. the loader comparison (benchmarks/loader_speed.py): torchvision vs tensor vs no loader at all;
# and prints a short table last. Run from anywhere:  bash benchmarks/gpu_check.sh
#
# Needs: CIFAR-10 under data/cifar-10-batches-py (or CIFARNB_DATA=...; parts made by
# shared/tools/stage-cifar10 under .stage/ are unpacked first), python3 with torch and torchvision.
# Nothing is downloaded. Writes to $OUT (default ./out): gpu_check.log, speed.json, histories.json,
# loader_speed.json.
# Knobs (environment): COMPILE=0 (no torch.compile), SEEDS="0 1 2 3 4", R18_EPOCHS=10, CUDAGRAPHS=0 (skip the
# ResNet18 reduce-overhead row), STEPS=50 (timed steps per throughput row), EXTRA_TRAIN="fastresnet9:fast@epochs=12"
# (more training entries over the same seeds, e.g. recipe variants; each costs ~1 minute).
set -uo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-./out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
started=$(date +%s)
PY=${PYTHON:-python3}
export CIFARNB_DATA=${CIFARNB_DATA:-data}
SEEDS=${SEEDS:-0 1 2 3 4}
R18_EPOCHS=${R18_EPOCHS:-10}
STEPS=${STEPS:-50}

# --- data -------------------------------------------------------------------------------------------------
if [ ! -d "$CIFARNB_DATA/cifar-10-batches-py" ] && ls .stage/part-* >/dev/null 2>&1; then
    stage_tool=$(ls .stage/stage-cifar10 ../shared/tools/stage-cifar10 shared/tools/stage-cifar10 2>/dev/null | head -n 1)
    [ -n "$stage_tool" ] && $PY "$stage_tool" unpack .stage "$CIFARNB_DATA"
fi
if [ ! -d "$CIFARNB_DATA/cifar-10-batches-py" ]; then
    echo "gpu_check: no CIFAR-10 at $CIFARNB_DATA/cifar-10-batches-py; set CIFARNB_DATA" >&2
    exit 2
fi

# --- cifarnb importable? (offline: no index, no build isolation; last resort: the checkout on PYTHONPATH) ---
if ! $PY -c "import cifarnb" >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-build-isolation -e . >/dev/null 2>&1 \
        || $PY -m pip install -q --no-index --no-build-isolation --no-deps -e . >/dev/null 2>&1 \
        || true
    if ! $PY -c "import cifarnb" >/dev/null 2>&1; then
        export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi

# --- what ran where ----------------------------------------------------------------------------------------
echo "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'NONE')"
if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: CUDA is not available; this check is for a GPU machine" >&2
    exit 3
fi

compile_set=()
[ "${COMPILE:-1}" = "0" ] && compile_set=(--set compile=false)
entries=(fastresnet9:fast fastresnet9:report resnet18:report resnet18:fast_resnet18)
[ "${CUDAGRAPHS:-1}" = "0" ] || entries+=("resnet18:fast_resnet18@compile_mode=reduce-overhead")

# --- 1-3: speed table, FastResNet9 over 5 seeds, ResNet18 epochs --------------------------------------------
# shellcheck disable=SC2086
timeout 360 $PY benchmarks/speed.py --entries "${entries[@]}" --steps "$STEPS" --warmup-steps 10 \
    --train fastresnet9:fast "resnet18:fast_resnet18@epochs=$R18_EPOCHS,seeds=[0],target=86.16" ${EXTRA_TRAIN:-} \
    --seeds $SEEDS --target 94 --out "$OUT" "${compile_set[@]}" \
    || echo "gpu_check: speed.py stopped with status $?"

# --- 4: loaders ---------------------------------------------------------------------------------------------
timeout 60 $PY benchmarks/loader_speed.py --steps 100 --warmup-steps 10 --out "$OUT" \
    || echo "gpu_check: loader_speed.py stopped with status $?"

# --- the short table -----------------------------------------------------------------------------------------
echo
echo "== gpu_check summary ($(( $(date +%s) - started )) s wall)"
$PY benchmarks/speed.py --summary "$OUT"
