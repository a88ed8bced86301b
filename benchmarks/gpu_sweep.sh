#!/usr/bin/env bash
# Fill the results store for report sections on a GPU machine and bring back only what the notebooks read.
#   SECTIONS="resnet9 features" PROFILE=quick bash benchmarks/gpu_sweep.sh
# Runs `cifarnb sweep` into a local store (results-gpu/, weights stay there), then copies the small files
# (run.json, tables/*.json, arrays/*.npz) into $OUT/results, to be merged into the committed results/ with
#   cp -rn <files_at>/results/. results/
# A sweep loads finished runs and resumes interrupted ones, so a section that does not fit one call's time
# limit continues on the next call of the same machine. Needs the data as gpu_check.sh does (data/ or .stage/).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./out}
PY=${PYTHON:-python3}
export CIFARNB_DATA=${CIFARNB_DATA:-data}
SECTIONS=${SECTIONS:?set SECTIONS, e.g. SECTIONS="resnet9 features" (ablations zoo resnet9 features vgg landscape)}
PROFILE=${PROFILE:-quick}
STORE=${STORE:-results-gpu}
mkdir -p "$OUT/results"

if [ ! -d "$CIFARNB_DATA/cifar-10-batches-py" ] && ls .stage/part-* >/dev/null 2>&1; then
    stage_tool=$(ls .stage/stage-cifar10 ../shared/tools/stage-cifar10 shared/tools/stage-cifar10 2>/dev/null | head -n 1)
    [ -n "$stage_tool" ] && $PY "$stage_tool" unpack .stage "$CIFARNB_DATA"
fi
$PY -c "import cifarnb" 2>/dev/null || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null
$PY -c "import torch; print('torch', torch.__version__)"

# shellcheck disable=SC2086
$PY -m cifarnb.cli sweep --section $SECTIONS --profile "$PROFILE" --results "$STORE" --device auto
status=$?
# Bring back the small files only (weights are tens of MB each and stay on the machine).
(cd "$STORE" && find . \( -name run.json -o -path './tables/*.json' -o -path './arrays/*.npz' \) -print0 \
    | xargs -0 -r -I{} cp --parents {} "$OUT/results/")
echo "gpu_sweep: $(find "$OUT/results" -type f | wc -l) result files in $OUT/results (sweep exit status $status)"
exit $status
