"""The public configuration surface: environment variable names, defaults and validation.

One place decides each setting; every other module asks `load_settings()`.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SOURCE = "CENSUS_SOURCE"
STORAGE_URL = "CENSUS_STORAGE_URL"
ACCURACY_THRESHOLD = "CENSUS_ACCURACY_THRESHOLD"
DEPLOYMENT = "CENSUS_DEPLOYMENT"
EXECUTOR = "CENSUS_EXECUTOR"
WORKERS = "CENSUS_WORKERS"
ALERT_WEBHOOK_URL = "CENSUS_ALERT_WEBHOOK_URL"
DASK_ADDRESS = "CENSUS_DASK_ADDRESS"
DASK_FIT_MIN_ROWS = "CENSUS_DASK_FIT_MIN_ROWS"

BUNDLED_SOURCE = "bundled"
DEFAULT_STORAGE_DIR = "census_storage"
DEFAULT_ACCURACY_THRESHOLD = 0.8
# From this many rows the final model trains on the Dask cluster (when one is configured).
DEFAULT_DASK_FIT_MIN_ROWS = 2_000_000
DEPLOYMENTS = ("local", "gcp")
EXECUTORS = ("in_process", "multiprocess", "k8s")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


@dataclass(frozen=True)
class Settings:
    deployment: str
    source: str
    storage_url: str
    accuracy_threshold: float
    executor: str
    workers: int  # parallel CV fits; 0 means one per core
    alert_webhook_url: str = ""  # run-failure alerts are POSTed here; empty = log only
    dask_address: str = ""  # Dask scheduler for the heavy compute; empty = local
    dask_fit_min_rows: int = DEFAULT_DASK_FIT_MIN_ROWS


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = environ.get(name, choices[0]).strip() or choices[0]
    if value not in choices:
        raise SettingsError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def _threshold(environ: Mapping[str, str]) -> float:
    raw = environ.get(ACCURACY_THRESHOLD, "").strip()
    if not raw:
        return DEFAULT_ACCURACY_THRESHOLD
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{ACCURACY_THRESHOLD}={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"{ACCURACY_THRESHOLD}={raw!r} must be between 0 and 1")
    return value


def _workers(environ: Mapping[str, str]) -> int:
    raw = environ.get(WORKERS, "0").strip() or "0"
    if not raw.isdigit():
        raise SettingsError(f"{WORKERS}={raw!r} must be a whole number (0 = one per core)")
    return int(raw)


def _dask_fit_min_rows(environ: Mapping[str, str]) -> int:
    raw = environ.get(DASK_FIT_MIN_ROWS, "").strip()
    if not raw:
        return DEFAULT_DASK_FIT_MIN_ROWS
    if not raw.isdigit():
        raise SettingsError(f"{DASK_FIT_MIN_ROWS}={raw!r} must be a whole number of rows")
    return int(raw)


def _storage_url(environ: Mapping[str, str]) -> str:
    raw = environ.get(STORAGE_URL, "").strip() or DEFAULT_STORAGE_DIR
    # Local paths are made absolute at load time so run workers agree on one location.
    return raw if "://" in raw else str(Path(raw).expanduser().resolve())


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    return Settings(
        deployment=_choice(environ, DEPLOYMENT, DEPLOYMENTS),
        source=environ.get(SOURCE, "").strip() or BUNDLED_SOURCE,
        storage_url=_storage_url(environ),
        accuracy_threshold=_threshold(environ),
        executor=_choice(environ, EXECUTOR, EXECUTORS),
        workers=_workers(environ),
        alert_webhook_url=environ.get(ALERT_WEBHOOK_URL, "").strip(),
        dask_address=environ.get(DASK_ADDRESS, "").strip(),
        dask_fit_min_rows=_dask_fit_min_rows(environ),
    )
