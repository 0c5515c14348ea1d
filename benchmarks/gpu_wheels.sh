#!/usr/bin/env bash
# Fetch, on a machine with PyPI, the wheels that the device image lacks, for benchmarks/gpu_check.sh.
#
#     bash benchmarks/gpu_wheels.sh            # from the repository root or anywhere
#
# The device image (torch 2.11 + CUDA 13, Python 3.12, numpy, opencv-python-headless, click, rich,
# safetensors, onnx, onnxruntime) lacks what animevid imports on its CUDA path: PyAV (av),
# platformdirs (animevid.styles), google-crc32c (animevid.tf_checkpoint), and scenedetect-headless
# (imported lazily by extract-frames only; carried so that every test module imports). openvino
# is imported lazily, only for the CPU engine: not carried. The versions are those installed in
# this checkout's venv (the ones the CPU suite passed with). Wheels: CPython 3.12, manylinux
# x86_64, no dependencies (the image has the rest), into .whl/ (git-ignored), which the device
# tool carries (`carry: [".whl"]`, 64 MiB with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DEST=.whl
PACKAGES=(av platformdirs google-crc32c scenedetect-headless)
PLATFORMS=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$tag")
done
mkdir -p "$DEST"
rm -f "$DEST"/*.whl
for package in "${PACKAGES[@]}"; do
  version=$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$package")
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$DEST" "$package==$version"
done
ls -l "$DEST"
total=$(du -sk "$DEST" | cut -f1)
tree=$(git ls-files -z | xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)
echo "wheels: $((total / 1024)) MiB; tracked tree: $((tree / 1024)) MiB; the device tool carries 64 MiB in all"
if (( total + tree > 60 * 1024 )); then
  echo "too large to carry: drop a wheel or shrink the tree" >&2
  exit 1
fi
