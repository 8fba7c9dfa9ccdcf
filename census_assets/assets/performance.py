"""Live performance: `batch_performance`, one partition per scored batch (the partitions of
`scored_batch`), measures the first scores a batch's content got against the labels that came back
for it; `performance_summary` puts realized and estimated accuracy, the scoring model and drift
side by side, batch after batch.

The `census_labels` sensor (automation/labels.py) requests a partition when its label file appears
or changes; the check `performance_within_limit` (checks/performance.py) judges it.
"""

import time
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from census_assets.assets.batches import SCORED_FOLDER, batch_records, census_batches, scored_batch
from census_assets.assets.evaluation import TRAINING_METRICS
from census_assets.assets.labelled_batches import (
    BATCH_FINGERPRINT,
    CONTENT_FINGERPRINT,
    LABEL_COMMITTED_AT,
    LABEL_REVISION,
    LABELLED_ROWS,
    PERFORMANCE_KEY,
    latest_materializations,
    metadata_of,
)
from census_assets.assets.labelled_rows import PERFORMANCE_ASSET, PERFORMANCE_FOLDER
from census_assets.assets.specs import spec
from census_assets.core.evaluation import ESTIMATION_ASSUMPTION, estimated_accuracy
from census_assets.core.label_files import LabelError, match_labels, read_label_file
from census_assets.core.performance import labelled_rows, performance_report
from census_assets.core.reporting import chart_png
from census_assets.core.scoring import PROBABILITY
from census_assets.failures import refuse
from census_assets.io_manager import PUBLISHED_AS
from census_assets.metadata import frame_metadata, markdown_table, png_markdown
from census_assets.resources.evaluation import EvaluationSettings
from census_assets.resources.labels import LabelFolder
from census_assets.resources.storage import ArtifactStorage
from census_assets.resources.training import TrainingSettings
from census_assets.storage.codecs import codec_for, load
from census_assets.storage.commits import ArtifactKey, run_manifest
from census_assets.storage.errors import PermanentStorageError, RegistryError
from census_assets.storage.objects import ObjectStore
from census_assets.storage.registry import Registry

METRICS = ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "roc_auc", "log_loss", "rows")
PAGE = 100  # materializations read at a time when looking for a batch's first scores


@dataclass(frozen=True)
class FirstScores:
    """The first scores published for a batch's current content."""

    run_id: str
    scored_at: float  # seconds since the epoch
    model_version: str
    content_fingerprint: str
    frame: pd.DataFrame


def first_scores(instance: dg.DagsterInstance, store: ObjectStore, partition: str) -> FirstScores:
    """The batch's content is what its latest scores are of; its first scores, the earliest
    materialization of that content: the production model's scores before any model could have
    been trained on the batch's labels (a re-score by a later model never replaces them here)."""
    scores = dg.AssetRecordsFilter(asset_key=scored_batch.key, asset_partitions=[partition])
    latest = instance.fetch_materializations(scores, limit=1).records
    if not latest:
        raise refuse(f"batch {partition} has no scores yet: its labels are measured once it is scored")
    content = metadata_of(latest[0])[CONTENT_FINGERPRINT]
    cursor, first = None, None
    while first is None:
        page = instance.fetch_materializations(scores, limit=PAGE, cursor=cursor, ascending=True)
        first = next((r for r in page.records if metadata_of(r).get(CONTENT_FINGERPRINT) == content), None)
        if first is None and not page.has_more:  # only if the records changed between the two reads
            raise dg.Failure(f"batch {partition}'s scores changed while they were read: measure it again")
        cursor = page.cursor
    manifest = run_manifest(store, ArtifactKey(scored_batch.key.path[-1], partition, SCORED_FOLDER), first.run_id)
    if manifest is None:
        raise refuse(
            f"the first scores of batch {partition}'s content (run {first.run_id}) are gone from the storage "
            "(pruned?): its labels cannot be measured against them"
        )
    return FirstScores(
        run_id=first.run_id,
        scored_at=first.timestamp,
        model_version=metadata_of(first)["model_version"],
        content_fingerprint=content,
        frame=load(store, codec_for(pd.DataFrame), manifest["stem"], manifest["files"]),
    )


def reference_accuracy(registry: Registry, version: str) -> float | None:
    """The accuracy the scoring model had on its evaluation rows when it was promoted."""
    try:
        return float(registry.read_json(version, TRAINING_METRICS)["holdout_accuracy"])
    except (RegistryError, KeyError):  # a version no longer complete, or from before the record
        return None


def label_committed_at(instance: dg.DagsterInstance, partition: str, revision: str) -> float:
    """When this label revision was first committed: carried over while the revision stays."""
    previous = latest_materializations(instance, PERFORMANCE_KEY, [partition]).get(partition)
    if previous is not None and metadata_of(previous).get(LABEL_REVISION) == revision:
        return float(metadata_of(previous)[LABEL_COMMITTED_AT])
    return time.time()


def _metric_entries(report: dict) -> dict[str, float]:
    """Floats the UI plots across partitions (NaN, a one-class group's AUC, left out)."""
    entries = {name: report["overall"][name] for name in METRICS}
    entries["scored_labelled_rows"] = entries.pop("rows")
    for column, values in report["groups"].items():
        for value, metrics in values.items():
            entries.update({f"{name} {column}={value}": metrics[name] for name in METRICS})
    return {name: float(value) for name, value in entries.items() if value == value}


@dg.asset(
    **spec(PERFORMANCE_ASSET),
    partitions_def=census_batches,
    metadata={PUBLISHED_AS: PERFORMANCE_FOLDER},
    output_required=False,
)
def batch_performance(
    context: dg.AssetExecutionContext,
    labels: LabelFolder,
    evaluation: EvaluationSettings,
    storage: ArtifactStorage,
    model_registry: dg.ResourceParam[Registry],
):
    """A batch's labels (CENSUS_LABELS_URL, a file named as the batch) joined with the first scores
    published for the batch's content: accuracy with its 95% interval, ROC AUC, log loss, overall
    and per group (CENSUS_GROUP_COLUMNS), label coverage and delay, how far the estimate made
    before the labels was off, and the model that scored it. Stores the labelled rows (inputs and
    true label), which raw_census trains on; published at `<storage>/performance/<partition>.parquet`.

    A label file that cannot be matched fails its own partition with the reason; nothing is stored."""
    if not context.has_partition_key:
        context.log.info("batch_performance measures one batch per run: no partition in this run")
        return
    partition = context.partition_key
    store = storage.store()
    try:
        first = first_scores(context.instance, store, partition)
        name = labels.find(partition)
        if name is None:
            raise refuse(f"no label file in {labels.url} has the partition key {partition!r} (removed or renamed?)")
        url = labels.file_url(name)
        data, fingerprint = labels.read(name)
    except PermanentStorageError as error:
        raise refuse(f"cannot read the labels or scores of batch {partition!r}: {error}") from error
    try:
        matched = match_labels(
            read_label_file(data, name),
            first.frame,
            batch_fingerprint=first.content_fingerprint,
            label_fingerprint=fingerprint,
        )
    except LabelError as error:
        raise refuse(f"{url}: {error}") from error
    rows = labelled_rows(first.frame, matched)
    report = performance_report(rows, matched, evaluation.group_columns)
    estimate = estimated_accuracy(first.frame[PROBABILITY])
    reference = reference_accuracy(model_registry, first.model_version)
    metadata = {
        "model_version": first.model_version,
        LABELLED_ROWS: float(matched.labelled_rows),
        "batch_rows": float(matched.batch_rows),
        "label_coverage": matched.coverage,
        "label_delay_hours": (time.time() - first.scored_at) / 3600,
        "estimated_accuracy": estimate,
        **(_metric_entries(report) if report else {}),
        **({"estimate_error": estimate - report["overall"]["accuracy"]} if report else {}),
        **({"reference_accuracy": reference} if reference is not None else {}),
        "estimate_assumption": ESTIMATION_ASSUMPTION,
        "label_file": dg.MetadataValue.path(url),
        "keyed_by": matched.keyed_by,
        BATCH_FINGERPRINT: matched.batch_fingerprint,
        LABEL_REVISION: matched.revision,
        LABEL_COMMITTED_AT: label_committed_at(context.instance, partition, matched.revision),
        "first_scores_run": first.run_id,
        **frame_metadata(rows),
    }
    if report:
        table = pd.DataFrame(
            [{"group": f"{column}={value}", **{k: round(metrics[k], 4) for k in METRICS}}
             for column, values in report["groups"].items() for value, metrics in values.items()]
        )  # fmt: skip
        metadata["per_group"] = markdown_table(table)
    context.log.info(f"{url}: {matched.labelled_rows} of {matched.batch_rows} rows labelled (scores {first.run_id})")
    # What the measure is a function of: the labels and the scores they are measured against.
    yield dg.Output(rows, metadata=metadata, data_version=dg.DataVersion(f"{matched.revision}|{first.run_id}"))


# ---- the summary across batches ------------------------------------------------------------------

# batch_performance's figures the summary shows.
MEASURED = ("accuracy", "accuracy_ci_low", "accuracy_ci_high", LABELLED_ROWS, "label_coverage")
SUMMARY_COLUMNS = (
    "partition", "scored_at", "model_version", "estimated_accuracy", *MEASURED, "max_psi", "worst_feature",
)  # fmt: skip


def performance_table(scoring: list[dict], performance: dict[str, dict]) -> pd.DataFrame:
    """One row per scored batch, oldest first: the scoring version, the estimate, drift, and the
    realized accuracy once labels came back (`performance`: partition -> batch_performance's figures)."""
    nan = float("nan")
    rows = [
        {
            "partition": record["partition"],
            "scored_at": record.get("updated_at", ""),
            "model_version": record.get("model_version", ""),
            "estimated_accuracy": float(record.get("estimated_accuracy", nan)),
            **{name: float(performance.get(record["partition"], {}).get(name, nan)) for name in MEASURED},
            "max_psi": float(record.get("max_psi", nan)),
            "worst_feature": record.get("worst_feature", ""),
        }
        for record in scoring
        if record.get("status") == "scored"
    ]
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values(["scored_at", "partition"], kind="stable").reset_index(drop=True)


def performance_chart_png(table: pd.DataFrame, threshold: float) -> bytes:
    """Realized accuracy (with its 95% interval) and the estimate per batch, and max PSI beside them."""
    times = pd.to_datetime(table["scored_at"], utc=True)

    def draw(figure, axes) -> None:
        measured = table["accuracy"].notna()
        axes.errorbar(
            times[measured],
            table.loc[measured, "accuracy"],
            yerr=[
                table.loc[measured, "accuracy"] - table.loc[measured, "accuracy_ci_low"],
                table.loc[measured, "accuracy_ci_high"] - table.loc[measured, "accuracy"],
            ],
            fmt="o",
            color="#4f43dd",
            label="realized accuracy (95%)",
        )
        axes.plot(times, table["estimated_accuracy"], marker="x", linestyle="--", color="#7a7a7a", label="estimated")
        axes.axhline(threshold, color="#d1304a", linestyle=":", label=f"threshold {threshold:g}")
        axes.set_ylabel("accuracy")
        drift = axes.twinx()
        drift.plot(times, table["max_psi"], color="#e0a100", alpha=0.6, label="max PSI")
        drift.set_ylabel("max PSI")
        axes.set_title("batches: realized and estimated accuracy, drift", fontsize=10)
        axes.legend(fontsize=7, loc="lower left")
        figure.autofmt_xdate()

    return chart_png(3.0, draw)


@dg.asset(**spec("performance_summary"), deps=[batch_performance, scored_batch])
def performance_summary(context: dg.AssetExecutionContext, training: TrainingSettings) -> dg.Output[pd.DataFrame]:
    """Every scored batch over time: the model that scored it, the accuracy its scores expected
    (estimated_accuracy), the accuracy its labels showed (with its 95% interval) once they came
    back, and its drift (max PSI): input drift and performance decay side by side."""
    performance = latest_materializations(context.instance, PERFORMANCE_KEY)
    table = performance_table(
        batch_records(context.instance), {key: metadata_of(record) for key, record in performance.items()}
    )
    measured = table[table["accuracy"].notna()]
    errors = measured["estimated_accuracy"] - measured["accuracy"]
    metadata = {
        "batches_scored": float(len(table)),
        "batches_labelled": float(len(measured)),
        **({"latest_accuracy": float(measured["accuracy"].iloc[-1])} if len(measured) else {}),
        **({"mean_estimate_error": float(errors.mean())} if len(measured) else {}),
        "batches_below_threshold": float((measured["accuracy_ci_high"] < training.accuracy_threshold).sum()),
        "batches_table": markdown_table(table.tail(50).round(4)),
    }
    if len(table):
        chart = performance_chart_png(table, training.accuracy_threshold)
        metadata["accuracy_and_drift_over_time"] = png_markdown(chart, "realized and estimated accuracy, max PSI")
    return dg.Output(table, metadata=metadata)


PERFORMANCE_ASSETS = [batch_performance, performance_summary]
