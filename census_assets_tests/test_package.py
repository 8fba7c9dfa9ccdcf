"""Building the code location (census_assets.defs, which `dagster -m census_assets` asks for) freezes
what it loaded and leaves the collector on."""

import subprocess
import sys

import pytest

# A fresh interpreter: the fast tier leaves it out.
pytestmark = pytest.mark.slow


def test_the_code_location_is_imported_frozen_with_the_collector_left_on():
    code = (
        "import gc\n"
        "before = gc.get_stats()[2]['collections']\n"
        "import census_assets\n"
        "census_assets.defs\n"
        "print(gc.get_stats()[2]['collections'] - before, gc.get_freeze_count() > 100_000, gc.isenabled())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    # no full collection walked the modules while they loaded; they are frozen; collection goes on
    assert result.stdout.split() == ["0", "True", "True"]
