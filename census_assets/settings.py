"""The public configuration surface: environment variable names, defaults and validation.

One place decides each setting; every other module asks `load_environment()`. The Dagster
resources (`census_assets.resources`) are configured from it in `census_assets.definitions`.
"""

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from census_assets.sources.common import BUNDLED_SOURCE

SOURCE = "CENSUS_SOURCE"
STORAGE_URL = "CENSUS_STORAGE_URL"
ACCURACY_THRESHOLD = "CENSUS_ACCURACY_THRESHOLD"
DEPLOYMENT = "CENSUS_DEPLOYMENT"
EXECUTOR = "CENSUS_EXECUTOR"
WORKERS = "CENSUS_WORKERS"
ALERT_WEBHOOK_URL = "CENSUS_ALERT_WEBHOOK_URL"
# Slack alerts (the `slack` extra): both or neither; the token is read through dg.EnvVar.
SLACK_CHANNEL = "CENSUS_SLACK_CHANNEL"
SLACK_TOKEN = "CENSUS_SLACK_TOKEN"
# How often the asset-health alert sensor looks for failed checks and freshness changes.
ALERT_INTERVAL_SECONDS = "CENSUS_ALERT_INTERVAL_SECONDS"
# lgbm_model's freshness policy: warn / fail when its last materialization is older than this.
FRESHNESS_WARN_HOURS = "CENSUS_FRESHNESS_WARN_HOURS"
FRESHNESS_FAIL_HOURS = "CENSUS_FRESHNESS_FAIL_HOURS"
DASK_ADDRESS = "CENSUS_DASK_ADDRESS"
DASK_FIT_MIN_ROWS = "CENSUS_DASK_FIT_MIN_ROWS"
GCP_PROJECT = "GCP_PROJECT"
GCS_BUCKET = "CENSUS_GCS_BUCKET"
GCS_PREFIX = "CENSUS_GCS_PREFIX"
BQ_DATASET = "CENSUS_BQ_DATASET"
GCS_RETRY_DEADLINE = "CENSUS_GCS_RETRY_DEADLINE"
# Batch scoring (docs/batches.md): where batch files arrive, and how often the inbox sensor looks.
INBOX_URL = "CENSUS_INBOX_URL"
INBOX_INTERVAL_SECONDS = "CENSUS_INBOX_INTERVAL_SECONDS"
# A base64-encoded service-account JSON key; read through dg.EnvVar, so the UI never shows it.
GCP_CREDENTIALS = "GCP_CREDENTIALS"

DEFAULT_STORAGE_DIR = "census_storage"
DEFAULT_ACCURACY_THRESHOLD = 0.8
# From this many rows the final model trains on the Dask cluster (when one is configured).
DEFAULT_DASK_FIT_MIN_ROWS = 2_000_000
# The first of the ports LightGBM listens on in a distributed fit, one per Dask worker.
DEFAULT_LIGHTGBM_PORT = 12400
DEPLOYMENTS = ("local", "gcp")
GCP_DEFAULT_SOURCE = "bq://bigquery-public-data.ml_datasets.census_adult_income"
DEFAULT_GCS_PREFIX = "census_assets"
# Seconds a GCS read or write keeps retrying transient errors (429, 5xx, timeouts) before failing.
DEFAULT_GCS_RETRY_DEADLINE = 120.0
EXECUTORS = ("in_process", "multiprocess", "k8s")
# The weekly retrain (Mondays): a model older than 8 days is a late retrain, older than 15 two missed ones.
DEFAULT_FRESHNESS_WARN_HOURS = 8 * 24
DEFAULT_FRESHNESS_FAIL_HOURS = 15 * 24
MIN_FRESHNESS_WINDOW_SECONDS = 60  # Dagster's own minimum for either window
DEFAULT_ALERT_INTERVAL_SECONDS = 30


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


@dataclass(frozen=True)
class Environment:
    """The deployment as the environment variables describe it, validated."""

    deployment: str
    source: str
    storage_url: str
    accuracy_threshold: float
    executor: str
    workers: int  # parallel CV fits; 0 means one per core
    # Alerts are POSTed here (http/https, checked); empty = not used. A secret: kept out of repr().
    alert_webhook_url: str = field(default="", repr=False)
    slack_channel: str = ""  # alerts go to this Slack channel too (with SLACK_TOKEN); empty = no Slack
    alert_interval_seconds: int = DEFAULT_ALERT_INTERVAL_SECONDS
    freshness_warn_seconds: int = DEFAULT_FRESHNESS_WARN_HOURS * 3600
    freshness_fail_seconds: int = DEFAULT_FRESHNESS_FAIL_HOURS * 3600
    dask_address: str = ""  # Dask scheduler for the heavy compute; empty = local
    dask_fit_min_rows: int = DEFAULT_DASK_FIT_MIN_ROWS
    gcp_project: str = ""  # billing project for BigQuery (gcp deployment)
    bq_dataset: str = ""  # where feature_table is published; empty = not published (local)
    gcs_retry_deadline: float = DEFAULT_GCS_RETRY_DEADLINE
    gcp_key_in_env: bool = False  # GCP_CREDENTIALS is set: use that key, not default credentials
    inbox_url: str = ""  # batch files arrive here (local folder or gs://); empty: <storage_url>/inbox
    inbox_interval_seconds: int = 30  # the inbox sensor's minimum interval

    @property
    def inbox(self) -> str:
        """CENSUS_INBOX_URL, by default the `inbox` folder of the storage."""
        return self.inbox_url or f"{self.storage_url.rstrip('/')}/inbox"


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


def _gcs_retry_deadline(environ: Mapping[str, str]) -> float:
    raw = environ.get(GCS_RETRY_DEADLINE, "").strip() or str(DEFAULT_GCS_RETRY_DEADLINE)
    try:
        if (value := float(raw)) > 0:
            return value
    except ValueError:
        pass
    raise SettingsError(f"{GCS_RETRY_DEADLINE}={raw!r} must be a positive number of seconds")


def _alert_webhook_url(environ: Mapping[str, str]) -> str:
    """An http(s) URL or empty. The URL is a secret (it often embeds a token): errors show only its scheme."""
    raw = environ.get(ALERT_WEBHOOK_URL, "").strip()
    if not raw:
        return ""
    parsed = urlsplit(raw)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SettingsError(
            f"{ALERT_WEBHOOK_URL} must be an http:// or https:// URL with a host "
            f"(got scheme {parsed.scheme + '://' if parsed.scheme else 'none'}; the value is not shown, it is a secret)"
        )
    return raw


def _slack_channel(environ: Mapping[str, str]) -> str:
    channel = environ.get(SLACK_CHANNEL, "").strip()
    token = environ.get(SLACK_TOKEN, "").strip()
    if bool(channel) != bool(token):
        missing, given = (SLACK_TOKEN, SLACK_CHANNEL) if channel else (SLACK_CHANNEL, SLACK_TOKEN)
        raise SettingsError(f"{missing} must be set when {given} is (Slack alerts need both)")
    if channel and importlib.util.find_spec("dagster_slack") is None:
        raise SettingsError(
            f"{SLACK_CHANNEL} is set but dagster-slack is not installed: pip install 'census_assets[slack]'"
        )
    return channel


def _alert_interval(environ: Mapping[str, str]) -> int:
    raw = environ.get(ALERT_INTERVAL_SECONDS, "").strip() or str(DEFAULT_ALERT_INTERVAL_SECONDS)
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{ALERT_INTERVAL_SECONDS}={raw!r} must be a whole number of seconds, at least 1")
    return int(raw)


def _hours(environ: Mapping[str, str], name: str, default: float) -> int:
    """A window in hours (decimals allowed), as whole seconds, at least Dagster's minute."""
    raw = environ.get(name, "").strip()
    if not raw:
        return round(default * 3600)
    try:
        seconds = round(float(raw) * 3600)
    except (ValueError, OverflowError):  # text, nan, inf
        raise SettingsError(f"{name}={raw!r} is not a number of hours") from None
    if seconds < MIN_FRESHNESS_WINDOW_SECONDS:
        raise SettingsError(f"{name}={raw!r} must be at least one minute ({MIN_FRESHNESS_WINDOW_SECONDS / 3600:.4f} h)")
    return seconds


def _freshness_windows(environ: Mapping[str, str]) -> dict:
    warn = _hours(environ, FRESHNESS_WARN_HOURS, DEFAULT_FRESHNESS_WARN_HOURS)
    fail = _hours(environ, FRESHNESS_FAIL_HOURS, DEFAULT_FRESHNESS_FAIL_HOURS)
    if warn >= fail:
        raise SettingsError(
            f"{FRESHNESS_WARN_HOURS} ({warn / 3600:g} h) must be less than {FRESHNESS_FAIL_HOURS} ({fail / 3600:g} h)"
        )
    return dict(freshness_warn_seconds=warn, freshness_fail_seconds=fail)


def _inbox_url(environ: Mapping[str, str]) -> str:
    raw = environ.get(INBOX_URL, "").strip().rstrip("/")
    if raw and "://" in raw and not raw.startswith(("gs://", "file://")):
        raise SettingsError(f"{INBOX_URL}={raw!r} must be a local folder or a gs://bucket/prefix")
    return raw if not raw or "://" in raw else str(Path(raw).expanduser().resolve())


def _inbox_interval(environ: Mapping[str, str]) -> int:
    raw = environ.get(INBOX_INTERVAL_SECONDS, "").strip() or "30"
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{INBOX_INTERVAL_SECONDS}={raw!r} must be a whole number of seconds, at least 1")
    return int(raw)


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} must be set when {DEPLOYMENT}=gcp")
    return value


def _deployment_settings(environ: Mapping[str, str]) -> dict:
    """local: bundled source, local storage. gcp: BigQuery source, gs://bucket/prefix storage and a
    published feature table; every gcp variable is required and named when missing."""
    deployment = _choice(environ, DEPLOYMENT, DEPLOYMENTS)
    if deployment == "local":
        return dict(
            deployment=deployment,
            source=environ.get(SOURCE, "").strip() or BUNDLED_SOURCE,
            storage_url=_storage_url(environ),
            gcp_project=environ.get(GCP_PROJECT, "").strip(),  # bills a bq:// source, if any
        )
    project = _required(environ, GCP_PROJECT)
    bucket = _required(environ, GCS_BUCKET).removeprefix("gs://").strip("/")
    prefix = environ.get(GCS_PREFIX, "").strip().strip("/") or DEFAULT_GCS_PREFIX
    storage_url = f"gs://{bucket}/{prefix}"
    explicit = environ.get(STORAGE_URL, "").strip().rstrip("/")
    if explicit and explicit != storage_url:
        raise SettingsError(
            f"{STORAGE_URL}={explicit!r} disagrees with {GCS_BUCKET}/{GCS_PREFIX} ({storage_url}): "
            f"with {DEPLOYMENT}=gcp set the bucket and prefix only"
        )
    return dict(
        deployment=deployment,
        source=environ.get(SOURCE, "").strip() or GCP_DEFAULT_SOURCE,
        storage_url=storage_url,
        gcp_project=project,
        bq_dataset=_required(environ, BQ_DATASET),
    )


def load_environment(environ: Mapping[str, str] = os.environ) -> Environment:
    return Environment(
        **_deployment_settings(environ),
        accuracy_threshold=_threshold(environ),
        executor=_choice(environ, EXECUTOR, EXECUTORS),
        workers=_workers(environ),
        alert_webhook_url=_alert_webhook_url(environ),
        slack_channel=_slack_channel(environ),
        alert_interval_seconds=_alert_interval(environ),
        **_freshness_windows(environ),
        dask_address=environ.get(DASK_ADDRESS, "").strip(),
        dask_fit_min_rows=_dask_fit_min_rows(environ),
        gcs_retry_deadline=_gcs_retry_deadline(environ),
        gcp_key_in_env=bool(environ.get(GCP_CREDENTIALS, "").strip()),
        inbox_url=_inbox_url(environ),
        inbox_interval_seconds=_inbox_interval(environ),
    )
