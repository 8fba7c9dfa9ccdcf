"""Batch scoring: every file dropped in the inbox (CENSUS_INBOX_URL) becomes a partition of
`scored_batch`, scored by the production model exactly as `census-assets predict` scores it;
`batch_summary` is the one page an operator reads across batches.

The inbox sensor (automation/inbox.py) registers the partitions and requests one run per new or
changed file; the drift check per partition is checks/batches.py. docs/batches.md.
"""

import datetime as dt
import time
from collections.abc import Sequence

import dagster as dg
import pandas as pd
from pydantic import Field

from census_assets.assets.drift_metadata import drift_metadata
from census_assets.assets.evaluation import REFERENCE_PROFILE
from census_assets.assets.specs import spec
from census_assets.core import batches as core
from census_assets.core.batch_names import is_safe_key
from census_assets.core.batch_summary import behind_production, drift_chart_png, summary_table
from census_assets.core.drift import ReferenceProfile
from census_assets.core.evaluation import estimated_accuracy
from census_assets.core.explanations import INPUT_COLUMNS
from census_assets.core.schema import SchemaError
from census_assets.core.scoring import FLAG, PREDICTION, PROBABILITY, ScoringError
from census_assets.failures import refuse
from census_assets.io_manager import PUBLISHED_AS
from census_assets.metadata import frame_metadata, markdown_table, png_markdown
from census_assets.predict import score_with_production
from census_assets.resources.inbox import BatchInbox
from census_assets.resources.lifecycle import LifecycleSettings
from census_assets.storage.errors import PermanentStorageError
from census_assets.storage.registry import Registry

SCORED_FOLDER = "scored"
census_batches = dg.DynamicPartitionsDefinition(name="census_batches")


# ---- scored_batch --------------------------------------------------------------------------------


class ScoreBatchConfig(dg.Config):
    max_unscorable_share: float = Field(
        default=0.1,
        description="Refuse a batch when more than this share of its rows cannot be scored (a model input missing).",
    )
    lightgbm_threads: int = Field(
        default=1,
        description="OpenMP threads for the prediction. Two scoring runs run side by side (pool "
        "census_scoring), so 1 keeps a 2-core machine at 2 LightGBM threads.",
    )
    explain: int = Field(
        default=0,
        ge=0,
        le=len(INPUT_COLUMNS),
        description="Store each scored row's K reasons as `census-assets predict --explain K` adds them: "
        "reason_1..K, contribution_1..K, value_1..K. 0 (the default) stores none: tree SHAP costs "
        "far more per row than the prediction (docs/audit.md).",
    )


def _limit_threads(threads: int):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=max(1, threads), user_api="openmp")


def score_batch(raw: pd.DataFrame, model_registry: Registry, threads: int = 1, explain: int = 0):
    """(pointer, Scored, DriftReport | None, seconds scoring): the production model through
    census_assets.predict.score_with_production, then drift against that model's reference. With
    `explain` K > 0 the scored frame carries each row's K reasons, as `census-assets predict
    --explain K` adds them (their time counted in the scoring's)."""
    started = time.perf_counter()
    with _limit_threads(threads):
        pointer, scored = score_with_production(raw, model_registry, explain=explain)
    seconds = time.perf_counter() - started
    reference = ReferenceProfile.from_dict(model_registry.read_json(pointer["version"], REFERENCE_PROFILE))
    return pointer, scored, core.batch_drift(reference, scored), seconds


def scoring_metadata(frame: pd.DataFrame, report, profile: core.BatchProfile) -> dict:
    """The figures of one scored batch, floats so the UI plots them across partitions."""
    probability = frame[PROBABILITY]
    scored_rows = int(probability.notna().sum())
    flags = frame[FLAG]
    unseen_rows = int(flags.str.contains("unseen ", regex=False).sum())
    metadata = {
        "rows": float(len(frame)),
        "scored_rows": float(scored_rows),
        "flagged_rows": float((flags != "").sum()),
        "unscorable_rows": float(profile.unscorable_rows),
        "positive_rate": float(frame[PREDICTION].mean()) if scored_rows else 0.0,
        "mean_probability": float(probability.mean()) if scored_rows else 0.0,
        "unseen_category_share": unseen_rows / scored_rows if scored_rows else 0.0,
        # Before any label arrives: what the scores themselves say of their accuracy (ESTIMATION_ASSUMPTION).
        "estimated_accuracy": estimated_accuracy(probability) if scored_rows else 0.0,
    }
    if report is not None:
        metadata.update(drift_metadata(report))
    return metadata


@dg.asset(
    **spec("scored_batch"),
    partitions_def=census_batches,
    metadata={PUBLISHED_AS: SCORED_FOLDER},
    # A run of the whole graph without a partition (`--select '*'`) scores nothing and skips it.
    output_required=False,
)
def scored_batch(
    context: dg.AssetExecutionContext,
    config: ScoreBatchConfig,
    inbox: BatchInbox,
    model_registry: dg.ResourceParam[Registry],
):
    """One inbox file scored by the production model, one row per input row in order, through the
    same code path as `census-assets predict` (never_married_probability, never_married,
    scoring_flag; with the config `explain` K, the reason columns `--explain K` adds). A bad file
    fails its own partition with the reason and nothing is stored; the inbox file stays where it
    is. Published at `<storage>/scored/<partition>.parquet`."""
    if not context.has_partition_key:
        context.log.info("scored_batch scores one inbox batch per run: no partition in this run, nothing to score")
        return
    key = context.partition_key
    if not is_safe_key(key):
        raise refuse(f"partition key {key!r} is not a safe name ([A-Za-z0-9_.-], no '..'): not an inbox key")
    try:
        name = inbox.find(key)
        if name is None:
            raise refuse(f"no file in the inbox {inbox.url} has the partition key {key!r} (removed or renamed?)")
        url = inbox.file_url(name)
        data, fingerprint = inbox.read(name)
    except PermanentStorageError as error:  # gone since it was listed, no permission, no bucket
        raise refuse(f"cannot read batch {key!r} from the inbox: {error}") from error
    try:
        raw = core.read_batch(data, name)
        profile = core.check_batch(raw, config.max_unscorable_share)
        pointer, scored, report, seconds = score_batch(raw, model_registry, config.lightgbm_threads, config.explain)
    except (core.BatchError, SchemaError, ScoringError) as error:
        raise refuse(f"{url}: {error}") from error
    except PermanentStorageError as error:  # no usable production model (RegistryError included)
        raise refuse(f"cannot score {url}: {error}") from error
    frame = scored.frame
    version = pointer["version"]
    context.log.info(f"{url}: {len(frame)} rows scored by model {version} in {seconds:.2f} s")
    yield dg.Output(
        frame,
        metadata={
            "model_version": version,
            "inbox_file": dg.MetadataValue.path(url),
            "content_fingerprint": fingerprint,
            **scoring_metadata(frame, report, profile),
            "score_seconds": seconds,
            **frame_metadata(frame),
        },
        # What the scores are a function of: the file's content and the model.
        data_version=dg.DataVersion(f"{fingerprint}|{version}"),
    )


# ---- what happened to every batch, read from the instance ---------------------------------------


def _utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def latest_failure(instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str) -> tuple[str, str]:
    """(time, reason) of the latest failed attempt at a partition of a partitioned asset: its run's
    step failure."""
    info = instance.get_latest_planned_materialization_info(asset_key, partition)
    if info is None:
        return "", ""
    records = instance.get_records_for_run(info.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    for record in reversed(records):
        data = record.event_log_entry.dagster_event.step_failure_data
        if record.event_log_entry.step_key == asset_key.path[-1] and data is not None:
            reason = (data.user_failure_data.description if data.user_failure_data else None) or data.error.message
            return _utc(record.timestamp), reason.strip()
    run = instance.get_run_by_id(info.run_id)
    return "", f"run {info.run_id} {run.status.value.lower() if run else 'not found'}"


def batch_records(instance: dg.DagsterInstance, partitions: Sequence[str] | None = None) -> list[dict]:
    """For every partition: status, the latest materialization's figures (model_version, rows, PSI),
    and for a failed partition the reason its latest attempt failed."""
    keys = list(partitions if partitions is not None else instance.get_dynamic_partitions(census_batches.name))
    latest = instance.get_latest_storage_id_by_partition(scored_batch.key, dg.DagsterEventType.ASSET_MATERIALIZATION)
    wanted = [latest[key] for key in keys if key in latest]
    events: dict[str, dg.EventLogRecord] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=scored_batch.key, storage_ids=chunk), limit=len(chunk)
        )
        events.update({r.partition_key: r for r in result.records})
    statuses = instance.get_status_by_partition(scored_batch.key, keys, census_batches) or {}
    records = []
    for key in keys:
        status = statuses.get(key)
        record: dict = {"partition": key, "status": "not scored"}
        if (event := events.get(key)) is not None:
            metadata = {name: value.value for name, value in event.asset_materialization.metadata.items()}
            record.update({k: v for k, v in metadata.items() if isinstance(v, str | int | float)})
            record.update(status="scored", updated_at=_utc(event.timestamp), run_id=event.run_id)
        if status == dg.AssetPartitionStatus.FAILED:
            failed_at, reason = latest_failure(instance, scored_batch.key, key)
            record.update(status="failed", failure=reason, updated_at=failed_at or record.get("updated_at", ""))
        elif status == dg.AssetPartitionStatus.IN_PROGRESS:
            record["status"] = "in progress"
        records.append(record)
    return records


@dg.asset(**spec("batch_summary"), deps=[scored_batch])
def batch_summary(
    context: dg.AssetExecutionContext,
    model_registry: dg.ResourceParam[Registry],
    lifecycle: LifecycleSettings,
) -> dg.Output[pd.DataFrame]:
    """Every batch at a glance: scored or failed (and why), rows, the model version that scored it
    and whether that is still production's, drift (max PSI) per batch over time."""
    pointer = model_registry.pointer()
    production = pointer["version"] if pointer else None
    records = batch_records(context.instance)
    table = summary_table(records, production)
    scored = table[table["status"] == "scored"]
    behind = behind_production(records, production) if production else []
    metadata = {
        "production_version": production or "none",
        "batches": float(len(table)),
        "batches_scored": float(len(scored)),
        "batches_failed": float((table["status"] == "failed").sum()),
        "batches_behind_production": float(len(behind)),
        "rows_scored": float(scored["scored_rows"].sum()),
        "max_psi_latest_batch": float(scored["max_psi"].iloc[0]) if len(scored) else 0.0,
        "max_psi_all_batches": float(scored["max_psi"].max()) if len(scored) else 0.0,
        "batches_above_warn_psi": float((scored["max_psi"] > lifecycle.drift_warn_psi).sum()),
        "batches_above_fail_psi": float((scored["max_psi"] > lifecycle.drift_fail_psi).sum()),
        "behind_production": ", ".join(behind[:20]) + (" ..." if len(behind) > 20 else "") if behind else "none",
        "batches_table": markdown_table(table.head(50).round({"positive_rate": 4, "max_psi": 4})),
    }
    if len(scored):
        chart = drift_chart_png(scored, lifecycle.drift_warn_psi, lifecycle.drift_fail_psi)
        metadata["drift_over_time"] = png_markdown(chart, "max PSI per batch over time")
    if behind:
        context.log.warning(
            f"{len(behind)} batch(es) scored by another model than production {production}: "
            "re-score with `census-assets rescore` (docs/batches.md)"
        )
    return dg.Output(table, metadata=metadata)


BATCH_ASSETS = [scored_batch, batch_summary]
