#!/usr/bin/env bash
# What cifarnb needs that the device machine lacks, for its Python (3.12, x86-64 Linux), unpacked into the ignored
# folder .device-packages/: today pydantic (run.json's schema, cifarnb/run_schema.py) and what it depends on,
# about 7 MiB. Made once here, from the local package index; every device call carries it (the run tool's
# `carry: [".device-packages", ...]`) and benchmarks/gpu_report.sh puts it on PYTHONPATH.
#
#   bash benchmarks/device_packages.sh          # DEVICE_PYTHON=3.12 by default
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
version=$($PY -c "import pydantic; print(pydantic.VERSION)")  # the version the tests here ran with
wheels=$(mktemp -d)
trap 'rm -rf "$wheels" .device-packages.partial' EXIT
pip download --quiet --only-binary=:all: --python-version "${DEVICE_PYTHON:-3.12}" \
    --platform manylinux2014_x86_64 -d "$wheels" "pydantic==$version" 2> >(grep -v "is ignored" >&2)
rm -rf .device-packages.partial
mkdir .device-packages.partial
for wheel in "$wheels"/*.whl; do  # a wheel is a zip of what an installation puts on the path
    $PY -m zipfile -e "$wheel" .device-packages.partial
done
rm -rf .device-packages
mv .device-packages.partial .device-packages
echo "device_packages: $(du -sh .device-packages | cut -f1) in .device-packages ($(ls "$wheels" | tr '\n' ' '))"
