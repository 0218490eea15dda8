#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the whole test suite. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
QWENFT_VOCAB="$(Scripts/fetch-vocab.sh)"
export QWENFT_VOCAB
# NVRTC 13.0 and 12.9 from PyPI (once, ~230 MB): the CUDA tests compile every kernel to a CUBIN
# for sm_90 and sm_70 with no GPU.
nvrtc_dirs="$(Scripts/fetch-nvrtc.sh)"
QWENFT_TEST_NVRTC13="$(sed -n 1p <<<"$nvrtc_dirs")"
QWENFT_TEST_NVRTC12="$(sed -n 2p <<<"$nvrtc_dirs")"
export QWENFT_TEST_NVRTC13 QWENFT_TEST_NVRTC12
swift build --build-tests
swift test --skip-build "$@"
