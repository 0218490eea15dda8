#!/usr/bin/env bash
# Installs the two Debian libraries qwenft links (idempotent) and builds it in release mode.
# Usage: Scripts/setup.sh          → .build/release/qwenft
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(libopenblas-dev libopenmpi-dev openmpi-bin pkg-config)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

swift build -c release --product qwenft
echo "setup: built $(pwd)/.build/release/qwenft"
