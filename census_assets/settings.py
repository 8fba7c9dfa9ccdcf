"""The public configuration surface: every setting declared once, and the only reader of the environment.

Each environment variable is one `Setting` in `SETTINGS`: its name, the default an unset variable
stands for, the parser that validates it (errors name the variable), its description, and where it
applies. From those declarations come:
- `Environment` (one attribute per declared `field`), filled by `load_environment()`, which also
  applies the few rules that tie variables together (`_deployment_rule`, `_slack_rule`,
  `_freshness_rule`);
- the default and description of a Dagster resource field that a setting fills (`setting_field`);
- the configuration page, docs/configuration.md (`configuration_markdown`; a test compares).

To add a setting: declare it in `SETTINGS`, use `setting_field(...)` in the resource it configures
and pass `environment.<field>` to that resource in `census_assets.definitions`, then regenerate the
page with the command at its top.
"""

import dataclasses
import importlib.util
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from census_assets.core.evaluation import GROUP_COLUMNS as DEFAULT_GROUP_COLUMNS
from census_assets.core.schema import SOURCE_COLUMNS
from census_assets.sources.bigquery import BigQueryNameError, parse_table_uri
from census_assets.sources.common import BIGQUERY_SCHEME, BUNDLED_SOURCE
from census_assets.storage.gcp import DEFAULT_RETRY_DEADLINE

DEPLOYMENT = "CENSUS_DEPLOYMENT"
SOURCE = "CENSUS_SOURCE"
STORAGE_URL = "CENSUS_STORAGE_URL"
HOLDOUT = "CENSUS_HOLDOUT"
ACCURACY_THRESHOLD = "CENSUS_ACCURACY_THRESHOLD"
GROUP_COLUMNS = "CENSUS_GROUP_COLUMNS"
EXECUTOR = "CENSUS_EXECUTOR"
WORKERS = "CENSUS_WORKERS"
DASK_ADDRESS = "CENSUS_DASK_ADDRESS"
DASK_FIT_MIN_ROWS = "CENSUS_DASK_FIT_MIN_ROWS"
GCP_PROJECT = "GCP_PROJECT"
GCS_BUCKET = "CENSUS_GCS_BUCKET"
GCS_PREFIX = "CENSUS_GCS_PREFIX"
BQ_DATASET = "CENSUS_BQ_DATASET"
GCP_CREDENTIALS = "GCP_CREDENTIALS"
GCS_RETRY_DEADLINE = "CENSUS_GCS_RETRY_DEADLINE"
ALERT_WEBHOOK_URL = "CENSUS_ALERT_WEBHOOK_URL"
SLACK_CHANNEL = "CENSUS_SLACK_CHANNEL"
SLACK_TOKEN = "CENSUS_SLACK_TOKEN"
ALERT_INTERVAL_SECONDS = "CENSUS_ALERT_INTERVAL_SECONDS"
FRESHNESS_WARN_HOURS = "CENSUS_FRESHNESS_WARN_HOURS"
FRESHNESS_FAIL_HOURS = "CENSUS_FRESHNESS_FAIL_HOURS"
INBOX_URL = "CENSUS_INBOX_URL"
INBOX_INTERVAL_SECONDS = "CENSUS_INBOX_INTERVAL_SECONDS"
LABELS_URL = "CENSUS_LABELS_URL"
# Read by Dagster and by google-cloud-storage themselves; declared for the configuration page, and
# Read by Dagster itself; declared so that docs/configuration.md lists it.
DAGSTER_HOME = "DAGSTER_HOME"
STORAGE_EMULATOR_HOST = "STORAGE_EMULATOR_HOST"

DEPLOYMENTS = ("local", "gcp")
EXECUTORS = ("in_process", "multiprocess", "k8s")
GCP_DEFAULT_SOURCE = "bq://bigquery-public-data.ml_datasets.census_adult_income"
MIN_FRESHNESS_WINDOW_SECONDS = 60  # Dagster's own minimum for either window
# The first of the ports LightGBM listens on in a distributed fit, one per Dask worker (resource
# config of `dask` only, no environment variable).
DEFAULT_LIGHTGBM_PORT = 12400
# Where Dagster's UI masks a literal value of a resource field (an EnvVar shows only its name).
_DAGSTER_SECRET = {"dagster__is_secret": True}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


# A parser takes the variable's name (for the error) and its text (stripped; the default when the
# variable is unset or empty) and returns the value, or raises SettingsError naming the variable.
Parser = Callable[[str, str], Any]


def _text(variable: str, text: str) -> str:
    return text


def _choice(*choices: str) -> Parser:
    def parse(variable: str, text: str) -> str:
        if text not in choices:
            raise SettingsError(f"{variable}={text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _whole_number(what: str, minimum: int = 0) -> Parser:
    def parse(variable: str, text: str) -> int:
        # isdecimal is exactly what int() accepts (isdigit also passes superscripts int() refuses).
        if not text.isdecimal() or int(text) < minimum:
            raise SettingsError(f"{variable}={text!r} must be {what}")
        return int(text)

    return parse


def _fraction(variable: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{variable}={text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"{variable}={text!r} must be between 0 and 1")
    return value


def _positive_seconds(variable: str, text: str) -> float:
    try:
        if (value := float(text)) > 0:
            return value
    except ValueError:
        pass
    raise SettingsError(f"{variable}={text!r} must be a positive number of seconds")


def _hours_as_seconds(variable: str, text: str) -> int:
    """A window in hours (decimals allowed), as whole seconds, at least Dagster's minute."""
    try:
        seconds = round(float(text) * 3600)
    except (ValueError, OverflowError):  # text, nan, inf
        raise SettingsError(f"{variable}={text!r} is not a number of hours") from None
    if seconds < MIN_FRESHNESS_WINDOW_SECONDS:
        raise SettingsError(
            f"{variable}={text!r} must be at least one minute ({MIN_FRESHNESS_WINDOW_SECONDS / 3600:.4f} h)"
        )
    return seconds


def _http_url(variable: str, text: str) -> str:
    """An http(s) URL or empty. The URL is a secret (it often embeds a token): errors show only its scheme."""
    if not text:
        return ""
    parsed = urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SettingsError(
            f"{variable} must be an http:// or https:// URL with a host "
            f"(got scheme {parsed.scheme + '://' if parsed.scheme else 'none'}; the value is not shown, it is a secret)"
        )
    return text


def _absolute(path: str) -> str:
    # Local paths are made absolute at load time so run workers agree on one location.
    return str(Path(path).expanduser().resolve())


def _folder_or_gcs_prefix(variable: str, text: str) -> str:
    """A local folder (made absolute) or gs://bucket/prefix, without a trailing slash; empty stays empty."""
    text = text.rstrip("/")
    if text and "://" in text and not text.startswith(("gs://", "file://")):
        raise SettingsError(f"{variable}={text!r} must be a local folder or a gs://bucket/prefix")
    return text if not text or "://" in text else _absolute(text)


def _table(variable: str, text: str) -> str:
    """`bundled`, a CSV/Parquet path (made absolute), a gs:// URL or a bq:// table with valid names."""
    if text == BUNDLED_SOURCE or text.startswith("gs://"):
        return text
    if text.startswith(BIGQUERY_SCHEME):
        try:
            parse_table_uri(text)
        except BigQueryNameError as error:
            raise SettingsError(f"{variable}: {error}") from None
        return text
    if "://" in text:
        raise SettingsError(
            f"{variable}={text!r} must be `{BUNDLED_SOURCE}`, a CSV/Parquet path, a gs:// URL "
            "or bq://project.dataset.table"
        )
    return _absolute(text)


def _source_columns(variable: str, text: str) -> list[str]:
    """Comma-separated raw (source schema) column names, at least one, each once (a list: Dagster
    config holds lists, not tuples)."""
    columns = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in columns if name not in SOURCE_COLUMNS]
    if unknown:
        raise SettingsError(
            f"{variable}={text!r}: {', '.join(map(repr, unknown))} not in the source schema "
            f"({', '.join(SOURCE_COLUMNS)})"
        )
    if not columns or len(set(columns)) != len(columns):
        raise SettingsError(f"{variable}={text!r} must name at least one source column, each once")
    return columns


def _bucket_name(variable: str, text: str) -> str:
    return text.removeprefix("gs://").strip("/")


def _path_prefix(variable: str, text: str) -> str:
    return text.strip("/")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One environment variable: the single place its name, default, parser and meaning are written."""

    variable: str
    default: str  # what an unset or empty variable stands for, as one would write it
    description: str  # what it means; shown on the configuration page and in the launchpad
    parse: Parser = _text
    # The Environment attribute it fills; empty: only a rule in load_environment, or another tool, reads it.
    field: str = ""
    # The resource config it fills, as "<resource key>.<field>" or, in a nested resource,
    # "<resource key>.<nested resource>.<field>" (editable per run in the launchpad); a setting
    # without any is process-level: it shapes the code location, not a run.
    resources: tuple[str, ...] = ()
    applies: str = ""  # where it applies besides `resources`, for the configuration page
    secret: bool = False  # kept out of repr(); resources bind it as a dg.EnvVar, so the UI shows the name
    gcp_required: bool = False  # must be set when CENSUS_DEPLOYMENT=gcp
    gcp_default: str = ""  # the default when CENSUS_DEPLOYMENT=gcp, if it differs
    shown_default: str = ""  # the default in words, when the text alone would mislead

    @property
    def default_value(self) -> Any:
        return self.parse(self.variable, self.default)

    def read(self, environ: Mapping[str, str] = os.environ) -> Any:
        """This variable alone, parsed; `load_environment` also applies the rules across variables."""
        return self.parse(self.variable, environ.get(self.variable, "").strip() or self.default)


# In sections, in the order of the configuration page (and of the errors when several are wrong).
SECTIONS: dict[str, tuple[Setting, ...]] = {
    "Deployment and data": (
        Setting(
            DEPLOYMENT,
            DEPLOYMENTS[0],
            f"where the pipeline runs: {' or '.join(f'`{name}`' for name in DEPLOYMENTS)} (docs/gcp.md); `gcp` "
            "requires the Google Cloud settings marked so and changes the source's default",
            _choice(*DEPLOYMENTS),
            field="deployment",
            applies="the code location: the warehouse IO manager (BigQuery with gcp, none locally) and the "
            "storage URL's origin",
        ),
        Setting(
            SOURCE,
            BUNDLED_SOURCE,
            f"the training data: `{BUNDLED_SOURCE}` (the table shipped with the package), a CSV/Parquet path, "
            "a `gs://` URL, or `bq://project.dataset.table`, in the BigQuery table's schema",
            field="source",
            resources=("source.uri",),
            gcp_default=GCP_DEFAULT_SOURCE,
        ),
        Setting(
            STORAGE_URL,
            "census_storage",
            "where artifacts, the registry and scores live: a local directory (made absolute when loaded) "
            "or `gs://bucket/prefix`; with `gcp` it follows `CENSUS_GCS_BUCKET` and `CENSUS_GCS_PREFIX`",
            field="storage_url",
            resources=("io_manager.storage.url",),
            shown_default="`./census_storage`; `gcp`: `gs://<CENSUS_GCS_BUCKET>/<CENSUS_GCS_PREFIX>`",
        ),
        Setting(
            HOLDOUT,
            BUNDLED_SOURCE,
            f"the held-out table models are evaluated on when there are too few labelled rows: `{BUNDLED_SOURCE}` "
            "(the held-out table shipped with the package), a CSV/Parquet path, a `gs://` URL or "
            "`bq://project.dataset.table`, in the source schema",
            _table,
            field="holdout",
            resources=("evaluation.holdout",),
        ),
    ),
    "Training and evaluation": (
        Setting(
            ACCURACY_THRESHOLD,
            "0.8",
            "the blocking gate on `cv_accuracy`, between 0 and 1: below it no model is fitted or promoted",
            _fraction,
            field="accuracy_threshold",
            resources=("training.accuracy_threshold",),
        ),
        Setting(
            GROUP_COLUMNS,
            ",".join(DEFAULT_GROUP_COLUMNS),
            "the groups performance and fairness are reported for: comma-separated column names of the source "
            "schema",
            _source_columns,
            field="group_columns",
            resources=("evaluation.group_columns",),
        ),
        Setting(
            WORKERS,
            "0",
            "CV fits side by side; `0` = one per core (LightGBM threads per fit = cores / workers)",
            _whole_number("a whole number (0 = one per core)"),
            field="workers",
            resources=("training.workers",),
        ),
        Setting(
            EXECUTOR,
            EXECUTORS[0],
            f"how a run's steps execute: {', '.join(f'`{name}`' for name in EXECUTORS)} (one pod per step, the "
            "`k8s` extra; docs/scale.md); `in_process` by default: the graph is a chain, so no Python start-up "
            "per step",
            _choice(*EXECUTORS),
            field="executor",
            applies="the code location: the executor of every job",
        ),
        Setting(
            DASK_ADDRESS,
            "",
            "a Dask scheduler (e.g. `tcp://scheduler:8786`) for the CV and large final fits; empty = run locally",
            field="dask_address",
            resources=("dask.address",),
        ),
        Setting(
            DASK_FIT_MIN_ROWS,
            "2000000",
            "with a Dask cluster, from this many rows the final model trains with `DaskLGBMClassifier` on the "
            "cluster; below, locally",
            _whole_number("a whole number of rows"),
            field="dask_fit_min_rows",
            resources=("dask.distributed_fit_min_rows",),
        ),
    ),
    "Google Cloud": (
        Setting(
            GCP_PROJECT,
            "",
            "the project billed for BigQuery queries and holding the feature dataset; locally it bills a `bq://` "
            "source, if any (empty: the credentials' project)",
            field="gcp_project",
            resources=("source.project", "warehouse.project", "warehouse_io_manager.project"),
            gcp_required=True,
        ),
        Setting(
            GCS_BUCKET,
            "",
            "the existing bucket for the artifacts (`gs://` optional)",
            _bucket_name,
            applies="the storage URL with `gcp`",
            gcp_required=True,
        ),
        Setting(
            GCS_PREFIX,
            "census_assets",
            "the folder in the bucket: artifacts at `gs://<bucket>/<prefix>/`",
            _path_prefix,
            applies="the storage URL with `gcp`",
        ),
        Setting(
            BQ_DATASET,
            "",
            "the BigQuery dataset `feature_table` is published to (created if missing); ignored locally, where "
            "`feature_table` is not published",
            field="bq_dataset",
            resources=("warehouse.dataset", "warehouse_io_manager.dataset"),
            gcp_required=True,
        ),
        Setting(
            GCP_CREDENTIALS,
            "",
            "a base64-encoded service-account JSON key, used for every Google Cloud read and write (sources, "
            "storage, inbox, BigQuery, the CLI); empty: application default credentials",
            field="gcp_credentials",
            resources=(
                "io_manager.storage.gcp_credentials",
                "source.gcp_credentials",
                "warehouse_io_manager.gcp_credentials",
            ),
            applies="the CLI",
            secret=True,
        ),
        Setting(
            GCS_RETRY_DEADLINE,
            f"{DEFAULT_RETRY_DEADLINE:g}",
            "seconds a GCS read or write retries transient errors (429, 5xx, timeouts) with exponential backoff "
            "before the step fails; the step's retry policy may then re-run it",
            _positive_seconds,
            field="gcs_retry_deadline",
            resources=("io_manager.storage.gcs_retry_deadline",),
        ),
    ),
    "Alerts and freshness": (
        Setting(
            ALERT_WEBHOOK_URL,
            "",
            "failed runs, failed checks and freshness failures are POSTed here as JSON (an `http://` or `https://` "
            "URL); empty = log only",
            _http_url,
            field="alert_webhook_url",
            resources=("notifier.webhook_url",),
            secret=True,
        ),
        Setting(
            SLACK_CHANNEL,
            "",
            "the same alerts to this Slack channel (e.g. `#ml-alerts`), with `CENSUS_SLACK_TOKEN` (both or neither; "
            "the `slack` extra); empty = no Slack",
            field="slack_channel",
            resources=("notifier.slack_channel",),
        ),
        Setting(
            SLACK_TOKEN,
            "",
            "the Slack bot token for `CENSUS_SLACK_CHANNEL`",
            resources=("notifier.slack_token",),
            secret=True,
        ),
        Setting(
            ALERT_INTERVAL_SECONDS,
            "30",
            "how often the alert sensors look for failed runs, failed checks and freshness changes, and the "
            "performance-decay sensor for failed performance checks",
            _whole_number("a whole number of seconds, at least 1", minimum=1),
            field="alert_interval_seconds",
            applies="the code location: `census_run_failure_alert`'s, `census_asset_health_alert`'s and "
            "`census_performance_decay`'s minimum interval",
        ),
        Setting(
            FRESHNESS_WARN_HOURS,
            "192",
            "`lgbm_model`'s freshness warns this many hours (decimals allowed) after its last materialization: "
            "the weekly retrain plus a day",
            _hours_as_seconds,
            field="freshness_warn_seconds",
            applies="the code location: `lgbm_model`'s freshness policy",
            shown_default="`192` (8 days)",
        ),
        Setting(
            FRESHNESS_FAIL_HOURS,
            "360",
            "`lgbm_model`'s freshness fails this many hours after its last materialization (two missed "
            "retrains); more than `CENSUS_FRESHNESS_WARN_HOURS`",
            _hours_as_seconds,
            field="freshness_fail_seconds",
            applies="the code location: `lgbm_model`'s freshness policy",
            shown_default="`360` (15 days)",
        ),
    ),
    "Batches and labels": (
        Setting(
            INBOX_URL,
            "",
            "where batch files to score arrive: a local folder or a `gs://bucket/prefix`",
            _folder_or_gcs_prefix,
            field="inbox_url",
            resources=("inbox.url",),
            shown_default="`<CENSUS_STORAGE_URL>/inbox`",
        ),
        Setting(
            INBOX_INTERVAL_SECONDS,
            "30",
            "how often the `census_inbox`, `census_labels` and `census_rescore` sensors look (a local file is "
            "taken one interval after it stops changing)",
            _whole_number("a whole number of seconds, at least 1", minimum=1),
            field="inbox_interval_seconds",
            applies="the code location: `census_inbox`'s, `census_labels`' and `census_rescore`'s minimum interval",
        ),
        Setting(
            LABELS_URL,
            "",
            "where label files for scored batches arrive: a local folder or a `gs://bucket/prefix`",
            _folder_or_gcs_prefix,
            field="labels_url",
            resources=("labels.url",),
            shown_default="`<CENSUS_STORAGE_URL>/labels`",
        ),
    ),
    "Read by other tools": (
        Setting(
            DAGSTER_HOME,
            "",
            "Dagster's instance folder: run history, schedules, sensor cursors (docs/operations.md); empty: "
            "`dagster dev` uses a temporary instance",
            applies="Dagster itself",
        ),
        Setting(
            STORAGE_EMULATOR_HOST,
            "",
            "a GCS emulator's address (tests, local development) instead of Google Cloud Storage",
            applies="google-cloud-storage itself (the package does not read it)",
        ),
    ),
}
SETTINGS: tuple[Setting, ...] = tuple(setting for section in SECTIONS.values() for setting in section)
_BY_VARIABLE = {setting.variable: setting for setting in SETTINGS}


def setting(variable: str) -> Setting:
    """The declaration of an environment variable (KeyError names an undeclared one)."""
    return _BY_VARIABLE[variable]


def setting_field(variable: str, **overrides: Any) -> Any:
    """A pydantic `Field` for a resource field that a setting fills: the declared default and
    description (`"<VARIABLE>: <description>"`), marked secret for a secret. `overrides` are passed to
    Field as they are, e.g. `default=...` for a field every deployment must set."""
    declared = setting(variable)
    arguments: dict[str, Any] = {"default": declared.default_value, "description": _field_description(declared)}
    if declared.secret:
        arguments["json_schema_extra"] = _DAGSTER_SECRET
    return Field(**(arguments | overrides))


def _field_description(declared: Setting) -> str:
    secret = " (a secret, bound as a dg.EnvVar: the UI shows only the variable's name)" if declared.secret else ""
    return f"{declared.variable}{secret}: {declared.description}"


# The defaults other modules use as plain values.
DEFAULT_GCS_RETRY_DEADLINE: float = setting(GCS_RETRY_DEADLINE).default_value
DEFAULT_ALERT_INTERVAL_SECONDS: int = setting(ALERT_INTERVAL_SECONDS).default_value


class _Derived:
    """What Environment works out from its attributes."""

    @property
    def inbox(self) -> str:
        """CENSUS_INBOX_URL, by default the `inbox` folder of the storage."""
        return self.inbox_url or f"{self.storage_url.rstrip('/')}/inbox"

    @property
    def labels(self) -> str:
        """CENSUS_LABELS_URL, by default the `labels` folder of the storage."""
        return self.labels_url or f"{self.storage_url.rstrip('/')}/labels"

    @property
    def gcp_key_in_env(self) -> bool:
        """GCP_CREDENTIALS is set: use that key, not the application default credentials."""
        return bool(self.gcp_credentials)


Environment = dataclasses.make_dataclass(
    "Environment",
    [
        (declared.field, type(declared.default_value), dataclasses.field(repr=not declared.secret))
        for declared in SETTINGS
        if declared.field
    ],
    bases=(_Derived,),
    frozen=True,
    namespace={
        "__module__": __name__,
        "__doc__": "The deployment as the environment variables describe it, validated: one attribute per "
        "declared `Setting.field` (secrets kept out of repr), plus `inbox`, `labels` and `gcp_key_in_env`."
    },
)


def _deployment_rule(values: dict[str, Any], given: Mapping[str, str]) -> None:
    """local: storage in a local folder (made absolute) or a URL, nothing published to BigQuery. gcp:
    every gcp variable is required and named when missing; the storage is gs://bucket/prefix, which
    an explicit CENSUS_STORAGE_URL may repeat but not contradict; gcp defaults apply."""
    if values[DEPLOYMENT] == "local":
        storage = values[STORAGE_URL]
        values[STORAGE_URL] = storage if "://" in storage else _absolute(storage)
        values[BQ_DATASET] = ""
        return
    for declared in SETTINGS:
        if declared.gcp_required and declared.variable not in given:
            raise SettingsError(f"{declared.variable} must be set when {DEPLOYMENT}=gcp")
        if declared.gcp_default and declared.variable not in given:
            values[declared.variable] = declared.parse(declared.variable, declared.gcp_default)
    prefix = values[GCS_PREFIX] or setting(GCS_PREFIX).default_value
    storage_url = f"gs://{values[GCS_BUCKET]}/{prefix}"
    explicit = given.get(STORAGE_URL, "").rstrip("/")
    if explicit and explicit != storage_url:
        raise SettingsError(
            f"{STORAGE_URL}={explicit!r} disagrees with {GCS_BUCKET}/{GCS_PREFIX} ({storage_url}): "
            f"with {DEPLOYMENT}=gcp set the bucket and prefix only"
        )
    values[STORAGE_URL] = storage_url


def _slack_rule(values: Mapping[str, Any]) -> None:
    channel, token = values[SLACK_CHANNEL], values[SLACK_TOKEN]
    if bool(channel) != bool(token):
        missing, given = (SLACK_TOKEN, SLACK_CHANNEL) if channel else (SLACK_CHANNEL, SLACK_TOKEN)
        raise SettingsError(f"{missing} must be set when {given} is (Slack alerts need both)")
    if channel and importlib.util.find_spec("dagster_slack") is None:
        raise SettingsError(
            f"{SLACK_CHANNEL} is set but dagster-slack is not installed: pip install 'census_assets[slack]'"
        )


def _freshness_rule(values: Mapping[str, Any]) -> None:
    warn, fail = values[FRESHNESS_WARN_HOURS], values[FRESHNESS_FAIL_HOURS]
    if warn >= fail:
        raise SettingsError(
            f"{FRESHNESS_WARN_HOURS} ({warn / 3600:g} h) must be less than {FRESHNESS_FAIL_HOURS} ({fail / 3600:g} h)"
        )


def load_environment(environ: Mapping[str, str] = os.environ) -> Environment:
    """Every declared setting parsed, the rules across variables applied: the first problem raises
    SettingsError naming its variable."""
    given = {declared.variable: text for declared in SETTINGS if (text := environ.get(declared.variable, "").strip())}
    values = {declared.variable: declared.read(given) for declared in SETTINGS}
    _deployment_rule(values, given)
    _slack_rule(values)
    _freshness_rule(values)
    return Environment(**{declared.field: values[declared.variable] for declared in SETTINGS if declared.field})


_PAGE_HEADER = """\
# Configuration

Every setting is an environment variable, read and checked once, when the code location or the
`census-assets` CLI loads: a malformed value fails there, naming the variable. A setting with a
resource field under "where it applies" is also that Dagster resource's config, editable per run in
the launchpad; the others are process-level: they shape the code location itself (its executor,
sensor intervals, freshness policy), so a change needs a reload.

Rules across variables:
- `CENSUS_DEPLOYMENT=gcp` requires every variable whose default says so, takes the storage URL
  from `CENSUS_GCS_BUCKET` and `CENSUS_GCS_PREFIX` (an explicit `CENSUS_STORAGE_URL` must agree),
  and changes `CENSUS_SOURCE`'s default (docs/gcp.md).
- `CENSUS_SLACK_CHANNEL` and `CENSUS_SLACK_TOKEN`: both or neither.
- `CENSUS_FRESHNESS_WARN_HOURS` must be less than `CENSUS_FRESHNESS_FAIL_HOURS`.

Secrets (marked below) are never shown: the UI shows the variable's name, errors show no value.

This page is generated from the declarations in `census_assets/settings.py` (a test fails when they
differ). After changing a setting, regenerate it from the repository root:

```bash
python -c "import census_assets.settings as s; print(s.configuration_markdown(), end='')" > docs/configuration.md
```
"""


def _shown_default(declared: Setting) -> str:
    if declared.shown_default:
        shown = declared.shown_default
    elif declared.default:
        shown = f"`{declared.default}`"
    else:
        shown = "empty"
    if declared.gcp_default:
        shown += f"; `gcp`: `{declared.gcp_default}`"
    if declared.gcp_required:
        shown += "; required with `gcp`"
    return shown


def _where(declared: Setting) -> str:
    places = [f"`{target}`" for target in declared.resources] + ([declared.applies] if declared.applies else [])
    return ", ".join(places)


def configuration_markdown() -> str:
    """docs/configuration.md: the header, then one table per section, one row per setting."""
    lines = [_PAGE_HEADER]
    for title, settings in SECTIONS.items():
        lines += [f"## {title}", "", "| variable | default | meaning | where it applies |", "| --- | --- | --- | --- |"]
        for declared in settings:
            meaning = declared.description + (" (secret)" if declared.secret else "")
            lines.append(f"| `{declared.variable}` | {_shown_default(declared)} | {meaning} | {_where(declared)} |")
        lines.append("")
    return "\n".join(lines)

