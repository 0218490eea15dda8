#!/usr/bin/env bash
# Creates .venv with the Python oracles the fixture generators and benchmarks compare against
# (transformers, peft, tokenizers, tiktoken, jinja2, safetensors, torch, numpy). Only needed to
# regenerate fixtures or run Scripts/bench/; the tests never use it. About 6 GB (torch).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q numpy safetensors "tokenizers==0.23.3" "tiktoken==0.14.0" "jinja2==3.1.6" \
    "torch==2.15.0" "transformers==5.23.0" "peft==0.21.2"
# DPO oracles (Scripts/fixtures/dpo_*.py, Scripts/bench/dpo): TRL and the datasets stack, without
# letting pip touch torch.
.venv/bin/pip install -q --no-deps "trl==1.16.0" "datasets==4.8.5" "pyarrow==26.0.1" "pandas==3.1.1" "dill==0.4.1" \
    "multiprocess==0.70.19" "xxhash==4.1.0" "python-dateutil==4.0.0" "pytz==2026.6" "tzdata==2026.6" "httpx==0.28.1"
# bitsandbytes (NF4 / QLoRA fixtures, Scripts/fixtures/nf4*.py): its CPU backend needs nothing else.
.venv/bin/pip install -q --no-deps "bitsandbytes==0.50.2"
# DeepSpeed (Scripts/fixtures/deepspeed_zero.sh): from its source archive without compiled ops
# (DS_BUILD_OPS=0); ninja builds what it needs on first use.
DS_BUILD_OPS=0 .venv/bin/pip install -q --no-deps --no-build-isolation "deepspeed==0.19.8" "hjson==3.1.0" \
    "ninja==1.13.2" "py-cpuinfo==9.0.0" "msgpack==1.2.4" "einops==0.8.2"
echo "$(pwd)/.venv/bin/python"
