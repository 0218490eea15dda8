#!/usr/bin/env bash
# Fetches NVRTC from PyPI into .cache/nvrtc/ (ignored by git), for the tests that compile every
# CUDA kernel to a CUBIN with no GPU and no CUDA install:
#   .cache/nvrtc/13  NVRTC 13.0 (nvidia-cuda-nvrtc==13.0.*):  sm_75 and newer (the tests: sm_90)
#   .cache/nvrtc/12  NVRTC 12.9 (nvidia-cuda-nvrtc-cu12==12.9.*): still compiles sm_70 (V100)
# Only libnvrtc.so.* and libnvrtc-builtins.so.* are kept (~120 MB each). Prints the two folders,
# one per line. Idempotent: a folder that holds its libnvrtc is not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."
root=.cache/nvrtc

fetch() {  # fetch DIR SONAME REQUIREMENT
    local dir=$root/$1 soname=$2 requirement=$3
    if [ ! -s "$dir/$soname" ]; then
        mkdir -p "$dir/wheel"
        python3 -m pip download -q --no-deps --only-binary :all: \
            "$requirement" -d "$dir/wheel" >&2
        python3 - "$dir" <<'PY'
import glob, os, sys, zipfile
d = sys.argv[1]
wheel = sorted(glob.glob(d + "/wheel/*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if "/lib/" in name and base.startswith("libnvrtc") and ".alt." not in base:
            with open(os.path.join(d, base + ".tmp"), "wb") as f:
                f.write(z.read(name))
            os.replace(os.path.join(d, base + ".tmp"), os.path.join(d, base))
PY
        rm -rf "$dir/wheel"
    fi
    echo "$(pwd)/$dir"
}

fetch 13 libnvrtc.so.13 "nvidia-cuda-nvrtc==13.0.*"
fetch 12 libnvrtc.so.12 "nvidia-cuda-nvrtc-cu12==12.9.*"
