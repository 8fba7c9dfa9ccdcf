#!/usr/bin/env bash
# Installs everything the pipeline and its test suite need on a fresh machine (idempotent).
# Python packages come from pyproject.toml; system packages and emulator set-up go below.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip install -q -e '.[dev]'
