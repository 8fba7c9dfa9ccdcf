"""OpenMP really waits passively, and importing core's modules loads no LightGBM, sklearn or matplotlib.

Both are decided when a library is loaded, so each case runs in a fresh interpreter. libgomp reads
OMP_WAIT_POLICY once, when it is loaded; OMP_DISPLAY_ENV=VERBOSE makes every libgomp the process
loads (LightGBM's, and scikit-learn's bundled copy) print what it read, on stderr. libgomp prints
OMP_WAIT_POLICY = 'PASSIVE' even when the variable is unset (its default spins 300,000 times
before sleeping); only an explicit PASSIVE makes it print GOMP_SPINCOUNT = '0', so both are checked.
"""

import os
import re
import subprocess
import sys
import textwrap

import pytest

# Each case starts a Python interpreter: the fast tier leaves them out.
pytestmark = pytest.mark.slow

# Imports a module's package without running census_assets/__init__.py (which loads the Dagster
# definitions, and with them every library), so a case measures census_assets.core alone.
CORE_ONLY = """
import importlib.util, sys, types
spec = importlib.util.find_spec("census_assets")
package = types.ModuleType("census_assets")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["census_assets"] = package
"""

# A tiny fit on one thread, through the package's own fit.
FIT = """
import numpy as np
from census_assets.core.training import fit_rows
X = np.random.default_rng(0).random((300, 3))
fit_rows(X, (X[:, 0] > 0.5).astype(int), threads=1)
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def openmp_settings(stderr: str) -> list[dict[str, str]]:
    """OMP_WAIT_POLICY and GOMP_SPINCOUNT of every OpenMP runtime that displayed its environment."""
    blocks = re.findall(r"OPENMP DISPLAY ENVIRONMENT BEGIN(.*?)OPENMP DISPLAY ENVIRONMENT END", stderr, re.S)
    return [dict(re.findall(r"(OMP_WAIT_POLICY|GOMP_SPINCOUNT)\s*=\s*'([^']*)'", block)) for block in blocks]


def assert_passive(stderr: str) -> None:
    settings = openmp_settings(stderr)
    assert settings, "no OpenMP runtime displayed its environment:\n" + stderr[-2000:]
    assert all(s == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"} for s in settings), settings


@pytest.mark.parametrize(
    "code",
    [
        # core's modules first, as the code location's assets import them; then LightGBM directly
        CORE_ONLY + "import census_assets.core.reporting, census_assets.core.evaluation\nimport lightgbm\n" + FIT,
        # the helper modules outside core import LightGBM through
        CORE_ONLY + "from census_assets.core.lightgbm_runtime import lgb\n" + FIT,
        # the Dagster code location, then a fit
        "import census_assets\n" + FIT,
    ],
    ids=["core-modules", "lightgbm_runtime", "code-location"],
)
def test_openmp_waits_passively(code):
    assert_passive(run(code, OMP_DISPLAY_ENV="VERBOSE").stderr)


def test_the_check_tells_default_spinning_from_passive():
    # LightGBM loaded before anything of ours: libgomp's default, which prints 'PASSIVE' but spins.
    settings = openmp_settings(run("import lightgbm\n" + CORE_ONLY + FIT, OMP_DISPLAY_ENV="VERBOSE").stderr)
    assert settings and all(s["GOMP_SPINCOUNT"] != "0" for s in settings), settings


def test_an_explicit_wait_policy_wins():
    result = run(CORE_ONLY + FIT, OMP_DISPLAY_ENV="VERBOSE", OMP_WAIT_POLICY="ACTIVE")
    settings = openmp_settings(result.stderr)
    assert settings and all(s["OMP_WAIT_POLICY"] == "ACTIVE" for s in settings), settings


HEAVY = ("lightgbm", "sklearn", "matplotlib")


def test_importing_core_modules_loads_no_heavy_library():
    code = CORE_ONLY + f"""
import census_assets.core.training, census_assets.core.reporting
import census_assets.core.evaluation, census_assets.core.promotion, census_assets.storage.registry
print(sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY!r}))
from census_assets.core.training import RowBatches  # created on first use
print(RowBatches.__module__, RowBatches.__qualname__, [c.__name__ for c in RowBatches.__mro__])
"""
    loaded, row_batches = run(code).stdout.splitlines()
    assert loaded == "[]"
    assert row_batches == "census_assets.core.training RowBatches ['RowBatches', 'Sequence', 'ABC', 'object']"


def test_the_training_runs_charts_load_no_matplotlib():
    # Importing matplotlib costs more than the final fit: importance, contributions and reliability
    # diagrams are drawn with Pillow.
    code = CORE_ONLY + """
import pandas as pd
from census_assets.core import calibration, explanations, reporting
report = calibration.calibration_report([0, 1, 1, 0], [0.2, 0.7, 0.9, 0.4], {})
pngs = [
    calibration.reliability_diagram_png(calibration.diagram_curves(report), title="reliability"),
    explanations.importance_chart_png(pd.DataFrame({"column": ["age"], "mean_abs_contribution": [0.5]})),
    reporting.importance_chart_png(pd.DataFrame({"feature": ["age"], "gain_share": [1.0]})),
]
print(all(png.startswith(b"\\x89PNG") for png in pngs), "matplotlib" in sys.modules)
"""
    assert run(code).stdout.split() == ["True", "False"]
