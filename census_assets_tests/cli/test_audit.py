"""`census-assets predict --explain K` and `census-assets card [VERSION]`, in-process through
cli.main, on a registry holding a small census model with a card and one made before cards."""

import json

import numpy as np
import pandas as pd
import pytest

from census_assets import cli
from census_assets.assets.evaluation import TRAINING_METRICS
from census_assets.core.cleaning import clean
from census_assets.core.explanations import INPUT_COLUMNS, feature_contributions
from census_assets.core.features import Vocabulary, encode, split_target
from census_assets.core.promotion import model_version
from census_assets.core.rebuild import record_build
from census_assets.core.scoring import PROBABILITY
from census_assets.core.training import TrainedModel, fit_rows
from census_assets.storage.builds import BUILD_RECORD, build_files
from census_assets.storage.cards import card_files
from census_assets.storage.manifests import json_bytes, sha256
from census_assets.storage.objects import LocalObjectStore
from census_assets.storage.registry import Registry
from census_assets_tests.tiny_models import a_card, tiny_model

pytestmark = pytest.mark.audit


@pytest.fixture(scope="module")
def built(tmp_path_factory, bundled_raw):
    root = tmp_path_factory.mktemp("audit_cli")
    cleaned = clean(bundled_raw.head(2_000))
    vocabulary = Vocabulary.fit(cleaned)
    X, y = split_target(encode(cleaned, vocabulary).frame)
    model = TrainedModel(fit_rows(X, y, threads=1, feature_names=vocabulary.feature_names), vocabulary)
    registry = Registry(LocalObjectStore(root / "storage"))
    version = model_version(model)
    evidence = {"evaluation_rows": {"kind": "holdout", "rows": 16_276, "batches": []}}
    registry.publish(version, model, {
        **card_files(a_card(version)), TRAINING_METRICS: {"evidence": evidence},
        **build_files(bundled_raw.head(2_000), record_build(model, bundled_raw.head(2_000), "bundled")),
    })
    registry.promote(version, {}, run_id=None, expected_champion=None)
    older = tiny_model(seed=4)
    registry.publish(model_version(older), older, {})
    rows = root / "rows.csv"
    bundled_raw.iloc[5_000:5_100].to_csv(rows, index=False)
    return {"storage": str(root / "storage"), "model": model, "version": version,
            "older": model_version(older), "rows": rows, "raw": bundled_raw.iloc[5_000:5_100]}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_explain_adds_reasons_that_sum_to_the_score(capsys, built, tmp_path):
    output = tmp_path / "explained.parquet"
    code, out, err = run(capsys, "predict", "--storage", built["storage"], "--input", str(built["rows"]),
                         "--output", str(output), "--explain", str(len(INPUT_COLUMNS)))
    assert code == 0, err
    frame = pd.read_parquet(output)
    assert [c for c in frame.columns if c.startswith("reason_")] == [f"reason_{i}" for i in range(1, 12)]
    assert set(frame.loc[0, [f"reason_{i}" for i in range(1, 12)]]) == set(INPUT_COLUMNS)
    # Every column's contribution plus the bias is the row's raw score: its sigmoid, the probability.
    X, _ = split_target(encode(clean(built["raw"].head(1)), built["model"].vocabulary).frame)
    bias = feature_contributions(built["model"].booster, X)[0, -1]
    raw_score = frame[[f"contribution_{i}" for i in range(1, 12)]].sum(axis=1).to_numpy() + bias
    assert 1 / (1 + np.exp(-raw_score)) == pytest.approx(frame[PROBABILITY].to_numpy(), abs=1e-12)
    first = frame.loc[0, [f"reason_{i}" for i in range(1, 12)]].tolist()
    assert frame.loc[0, f"value_{first.index('age') + 1}"] == str(built["raw"]["age"].iloc[0])


def test_predict_explain_out_of_range_is_one_usage_line(capsys, built, tmp_path):
    with pytest.raises(SystemExit) as usage:  # argparse refuses it before any work
        cli.main(["predict", "--storage", built["storage"], "--input", str(built["rows"]),
                  "--output", str(tmp_path / "out.csv"), "--explain", "12"])
    err = capsys.readouterr().err
    assert usage.value.code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("census-assets predict: error: argument --explain: invalid choice: 12")
    assert not (tmp_path / "out.csv").exists()


def test_card_prints_productions_card_or_a_versions(capsys, built):
    code, out, _ = run(capsys, "card", "--storage", built["storage"])
    assert code == 0 and out.startswith(f"# Model card: census never-married classifier, version {built['version']}")
    assert run(capsys, "card", built["version"], "--storage", built["storage"])[1] == out
    code, out, _ = run(capsys, "card", built["version"], "--json", "--storage", built["storage"])
    assert code == 0 and json.loads(out) == a_card(built["version"])


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("older", "version {older} was made before cards: it has no model card"),
        ("latest", "'latest' is not a model version (16 hexadecimal digits)"),
    ],
)
def test_card_failures_are_one_line_with_exit_2(capsys, built, version, message):
    chosen = built["older"] if version == "older" else version
    code, out, err = run(capsys, "card", chosen, "--storage", built["storage"])
    assert code == 2 and out == ""
    assert err == f"census-assets card: error: {message.format(older=built['older'])}\n"


@pytest.fixture
def storage(built, tmp_path) -> str:
    """A private copy of the built storage, free to change."""
    import shutil

    return shutil.copytree(built["storage"], tmp_path / "storage")


def test_reproduce_exit_0_then_1_after_a_recorded_parameter_changes(capsys, built, storage):
    version = built["version"]
    code, out, err = run(capsys, "reproduce", version, "--storage", str(storage))
    assert (code, out, err) == (0, f"rebuilt {version}: the same model (same trees and vocabulary)\n", "")
    registry = Registry(LocalObjectStore(storage))
    record = registry.read_json(version, BUILD_RECORD)
    record["parameters"]["num_leaves"] = 7
    record["libraries"]["lightgbm"] = "4.3.0"
    data = json_bytes(record)
    registry.store.write(f"models/{version}/{BUILD_RECORD}", data)
    manifest = json.loads(registry.store.read(f"models/{version}/manifest.json"))
    manifest["files"][BUILD_RECORD] = sha256(data)
    registry.store.write(f"models/{version}/manifest.json", json_bytes(manifest))
    code, out, _ = run(capsys, "reproduce", version, "--storage", str(storage))
    lines = out.splitlines()
    assert code == 1 and lines[0].startswith("rebuilt ") and f"not {version}:" in lines[0]
    assert "trees differ; largest probability difference" in lines[0] and "bundled adult.test" in lines[0]
    assert lines[1].startswith("changed since the build: lightgbm 4.3.0 at build, ")


def test_forget_then_reproduce_says_so_with_exit_2(capsys, built, storage):
    version = built["version"]
    assert run(capsys, "forget", version, "--storage", str(storage))[:2] == (
        0, f"removed version {version}'s training rows; the model stays\n"
    )
    assert run(capsys, "forget", version, "--storage", str(storage))[1] == (
        f"version {version}'s training rows were already removed\n"
    )
    code, out, err = run(capsys, "reproduce", version, "--storage", str(storage))
    assert code == 2 and out == ""
    assert err == (f"census-assets reproduce: error: version {version}'s training rows were removed "
                   "(census-assets forget): it cannot be rebuilt\n")
    code, _, err = run(capsys, "reproduce", built["older"], "--storage", str(storage))
    assert code == 2 and "made before reproducible builds" in err and len(err.splitlines()) == 1
