"""The package's one way into LightGBM (and the scikit-learn it brings): OMP_WAIT_POLICY=PASSIVE is
set before its runtime loads, and the libraries' objects are frozen once loaded.

libgomp reads OMP_WAIT_POLICY when it is loaded (`import lightgbm` loads it), never again; unset,
idle OpenMP threads spin for a while before sleeping. Importing this module (or anything in
census_assets.core, whose __init__ sets the same default) puts PASSIVE in the environment first;
a user's explicit OMP_WAIT_POLICY wins. The first import runs with the garbage collector paused and
freezes what it loaded (import_long_lived says why).

    from census_assets.core.lightgbm_runtime import lightgbm
    lgb = lightgbm()                      # the lightgbm module, imported when first needed
    DaskLGBMClassifier = lightgbm("dask").DaskLGBMClassifier
    accuracy_score = sklearn("metrics").accuracy_score   # scikit-learn, which LightGBM brings

or, for a module that needs LightGBM at import time anyway:

    from census_assets.core.lightgbm_runtime import lgb
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading
from types import ModuleType

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def sklearn(submodule: str) -> ModuleType:
    """`sklearn.<submodule>`, with LightGBM loaded first: LightGBM imports scikit-learn itself, so
    scikit-learn's (and SciPy's) modules are loaded once, the way lightgbm() loads them."""
    lightgbm()
    return importlib.import_module(f"sklearn.{submodule}")


# Held while LightGBM is first imported, so one thread imports it with the collector paused.
_FIRST_IMPORT = threading.Lock()


def lightgbm(submodule: str = "") -> ModuleType:
    """`lightgbm` (or `lightgbm.<submodule>`), imported with OMP_WAIT_POLICY already set."""
    if "lightgbm" not in sys.modules:
        with _FIRST_IMPORT:
            if "lightgbm" not in sys.modules:
                import_long_lived("lightgbm")
    return importlib.import_module(f"lightgbm.{submodule}" if submodule else "lightgbm")


def import_long_lived(name: str) -> None:
    """Import a module whose objects live until the process ends, and freeze them.

    LightGBM brings scikit-learn and SciPy: with Dagster's and pandas' modules already loaded they
    are most of the objects the collector tracks. While they are created the collector would walk
    everything loaded so far several times, and at exit it would walk and tear down every module
    cycle again; paused during the import and frozen after it (gc.freeze), neither happens, and
    later full collections skip them too. Data alive now is freed by reference counting as
    before; only reference cycles that exist now are never reclaimed.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def __getattr__(name: str) -> ModuleType:
    # `from census_assets.core.lightgbm_runtime import lgb`: the module, imported on first use.
    if name == "lgb":
        return lightgbm()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
