#!/usr/bin/env bash
# What cifarnb needs that the device machine lacks, as wheels for its Python (3.12, x86-64 Linux), in the ignored
# folder .device-wheels/: today pydantic (run.json's schema, cifarnb/run_schema.py) and what it depends on, 2.6 MiB.
# Made once here, from the local package index; every device call carries it (the run tool's
# `carry: [".device-wheels", ...]`), and tools/remote_gpu/gpu_report.sh unpacks it there into .device-packages/
# (a wheel is a zip of what an installation puts on the path) and puts that on PYTHONPATH where pydantic is missing.
#
#   bash tools/remote_gpu/device_packages.sh          # DEVICE_PYTHON=3.12 by default
set -euo pipefail
cd "$(dirname "$0")/../.."  # the checkout's root
PY=${PYTHON:-python3}
version=$($PY -c "import pydantic; print(pydantic.VERSION)")  # the version the tests here ran with
rm -rf .device-wheels.partial
trap 'rm -rf .device-wheels.partial' EXIT
pip download --quiet --only-binary=:all: --python-version "${DEVICE_PYTHON:-3.12}" \
    --platform manylinux2014_x86_64 -d .device-wheels.partial "pydantic==$version" 2> >(grep -v "is ignored" >&2)
rm -rf .device-wheels
mv .device-wheels.partial .device-wheels
echo "device_packages: $(du -sh .device-wheels | cut -f1) in .device-wheels ($(ls .device-wheels | tr '\n' ' '))"
