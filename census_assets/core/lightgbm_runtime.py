"""The package's one way into LightGBM: OMP_WAIT_POLICY=PASSIVE is set before its runtime loads.

libgomp reads OMP_WAIT_POLICY when it is loaded (`import lightgbm` loads it), never again; unset,
idle OpenMP threads spin for a while before sleeping. Importing this module (or anything in
census_assets.core, whose __init__ sets the same default) puts PASSIVE in the environment first;
a user's explicit OMP_WAIT_POLICY wins.

    from census_assets.core.lightgbm_runtime import lightgbm
    lgb = lightgbm()                      # the lightgbm module, imported when first needed
    DaskLGBMClassifier = lightgbm("dask").DaskLGBMClassifier

or, for a module that needs LightGBM at import time anyway:

    from census_assets.core.lightgbm_runtime import lgb
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from types import ModuleType

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def lightgbm(submodule: str = "") -> ModuleType:
    """`lightgbm` (or `lightgbm.<submodule>`), imported with OMP_WAIT_POLICY already set."""
    first = "lightgbm" not in sys.modules
    module = importlib.import_module(f"lightgbm.{submodule}" if submodule else "lightgbm")
    if first:
        # LightGBM brings scikit-learn and SciPy: their modules, with Dagster's and pandas' already
        # loaded, are most of the objects the collector tracks, and they live until the process ends.
        # Frozen, neither later full collections nor the interpreter's exit (which otherwise walks and
        # tears down every module cycle) spend time on them. Data alive now is freed by reference
        # counting as before; only cycles that exist now are never reclaimed.
        gc.freeze()
    return module


def __getattr__(name: str) -> ModuleType:
    # `from census_assets.core.lightgbm_runtime import lgb`: the module, imported on first use.
    if name == "lgb":
        return lightgbm()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
