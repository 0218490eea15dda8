#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the whole test suite. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
QWENFT_VOCAB="$(Scripts/fetch-vocab.sh)"
export QWENFT_VOCAB
swift build --build-tests
swift test --skip-build "$@"
