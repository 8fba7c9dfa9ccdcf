"""The world of the label-loop stories (test_loop.py in this process, test_loop_daemon.py with a real
daemon): model A trained on part of the bundled table, then adult.test rows arriving as batches,
in a world where people marry later (a learnable concept shift) or in one where nothing shifts."""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from census_assets import cli as census_cli
from census_assets.core.labels import TARGET_VALUE
from census_assets.core.scoring import PROBABILITY
from census_assets.definitions import build_definitions
from census_assets.settings import load_environment
from census_assets.storage.objects import open_store
from census_assets.storage.registry import Registry
from census_assets_tests.harness.runner import ONE_CV_REPEAT, with_fields

BATCH_ROWS = 2000
SOURCE_ROWS = 10_000
THRESHOLD = "0.7"
SHIFTED_BATCHES = 6
CONTROL_BATCHES = 2
# functional_weight is in the source schema but not a model input: a unique value per batch row
# marks where every row of raw_census came from.
MARKER = "functional_weight"
MARKER_BASE = 10_000_000
FOLD_FIGURES = ("accuracy_mean", "accuracy_std", "accuracy_min", "accuracy_max")


def marry_later(frame: pd.DataFrame) -> pd.DataFrame:
    """Every married person aged 22-40 is Never-married: the same inputs, other labels."""
    married = frame["marital_status"].str.strip().str.startswith("Married") & frame["age"].between(22, 40)
    return frame.assign(marital_status=frame["marital_status"].mask(married, " " + TARGET_VALUE))


def marked(frame: pd.DataFrame, batch: int) -> pd.DataFrame:
    return frame.assign(**{MARKER: MARKER_BASE + batch * 100_000 + np.arange(len(frame))})


@dataclass
class World:
    root: Path
    env: dict
    instance: dg.DagsterInstance
    batches: dict[str, pd.DataFrame]  # inbox name -> the batch rows with their true labels

    @property
    def storage(self) -> Path:
        return Path(self.env["CENSUS_STORAGE_URL"])

    @property
    def definitions(self) -> dg.Definitions:
        return build_definitions(load_environment(self.env))

    def registry(self) -> Registry:
        return Registry(open_store(str(self.storage)))

    def drop(self, name: str, rows: pd.DataFrame, labels: pd.DataFrame | None = None) -> None:
        """A batch in the inbox (without its labels) and, when given, its label file."""
        rows.drop(columns="marital_status").to_csv(self.root / "inbox" / name, index=False)
        self.batches[name] = rows
        if labels is not None:
            labels.to_csv(self.root / "labels" / name, index=False)

    def run_partition(self, job: str, partition: str) -> dg.ExecuteInProcessResult:
        self.instance.add_dynamic_partitions("census_batches", [partition])
        return self.definitions.resolve_job_def(job).execute_in_process(
            partition_key=partition, instance=self.instance, raise_on_error=False
        )

    def train(self, evaluation: dict | None = None, tags: dict | None = None, selection=None):
        """The training graph and promotion, as census_pipeline runs it, on one repeat of the CV."""
        defs = self.definitions
        resources = {**defs.resources, "training": with_fields(defs.resources["training"], **ONE_CV_REPEAT)}
        if evaluation:
            resources["evaluation"] = with_fields(defs.resources["evaluation"], **evaluation)
        return dg.materialize(
            [*defs.assets, *defs.asset_checks], resources=resources, instance=self.instance, tags=tags,
            selection=selection, raise_on_error=False,
        )  # fmt: skip

    def performance(self, partition: str) -> dict:
        record = self.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("batch_performance"), asset_partitions=[partition]), limit=1
        ).records[0]
        return {name: value.value for name, value in record.asset_materialization.metadata.items()}


def open_world(root: Path, source: Path) -> World:
    for folder in ("inbox", "labels", "home"):
        (root / folder).mkdir(exist_ok=True)
    env = {
        "CENSUS_STORAGE_URL": str(root / "storage"),
        "CENSUS_SOURCE": str(source),
        "CENSUS_INBOX_URL": str(root / "inbox"),
        "CENSUS_LABELS_URL": str(root / "labels"),
        "CENSUS_ACCURACY_THRESHOLD": THRESHOLD,
    }
    return World(root, env, dg.DagsterInstance.local_temp(tempdir=str(root / "home")), {})


def holdout_rows() -> pd.DataFrame:
    from census_assets.assets.evaluation import read_holdout

    return read_holdout().sample(frac=1, random_state=5).reset_index(drop=True)


def predict_accuracy(world: World, name: str, tmp_path: Path) -> float:
    """The accuracy an operator computes from `census-assets predict` output and the label file."""
    output = tmp_path / f"{name}.scored.parquet"
    args = ["predict", "--storage", str(world.storage), "--input", str(world.root / "inbox" / name)]
    assert census_cli.main([*args, "--output", str(output)]) == 0
    probability = pd.read_parquet(output)[PROBABILITY].to_numpy()
    truth = pd.read_csv(world.root / "labels" / name)["marital_status"].str.strip() == TARGET_VALUE
    return float(((probability >= 0.5) == truth.to_numpy()).mean())
