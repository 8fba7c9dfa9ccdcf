"""The benchmark runs (quickly, without the slow reference CV) so it cannot rot, its floor graph
has the real graph's shape, and it stays out of the installed package."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import pytest
from setuptools import find_packages

import benchmarks
from benchmarks.floor import floor_definitions, graph_shape
from census_assets import defs
from census_assets.assets.specs import TRAINING_SELECTION

ROOT = Path(benchmarks.__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_prints_one_json_line_with_every_stage():
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--no-reference", "--no-cli"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert set(report["ours"]) == {"clean", "features", "cv", "final_fit"}
    assert report["scale"] == 1 and report["rows"] == 32561 and 0.825 <= report["cv_mean"] <= 0.835
    assert all(stage["peak_rss_mib"] > 0 for stage in report["ours"].values())


def run_json(*args: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=True
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_evaluation_benchmark_times_both_models_and_its_parts():
    report = run_json("benchmarks.evaluation", "--repeats", "1")
    assert len(report["both_models_wall_seconds"]) == 1 and report["both_models_wall_seconds"][0] > 0
    assert set(report["median_wall_seconds"]) == {"evaluate_on_rows", "audit_same_rows", "contributions"}


@pytest.mark.slow
def test_the_reasons_benchmark_scores_with_and_without_reasons():
    report = run_json("benchmarks.reasons", "--scales", "1", "--repeats", "1")
    scale = report["1x"]
    assert report["explain"] == 3 and scale["rows"] == 16281
    assert scale["with_reasons"]["scoring_seconds"] > scale["without_reasons"]["scoring_seconds"] > 0


@pytest.mark.slow
def test_the_training_run_alone_reports_its_steps_and_peak_memory():
    report = run_json("benchmarks.bench", "--training-run-only")
    run = report["training"]
    assert report["scale"] == 1 and run["peak_rss_mib"] > 0 and run["wall_seconds"] >= run["run_seconds"] > 0
    assert {"raw_census", "cv_accuracy", "lgbm_model", "production_model"} <= set(run["step_seconds"])


def test_the_wheel_ships_census_assets_and_every_subpackage_only():
    """What setuptools' find, as pyproject.toml configures it, puts in the wheel."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = set(find_packages(where=str(ROOT), **find))
    package_dirs = {
        ".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "census_assets").rglob("__init__.py")
    }
    assert shipped == package_dirs
    # Both are packages beside census_assets that a looser pattern would pick up.
    assert {"census_assets_tests", "benchmarks"} <= set(find_packages(where=str(ROOT)))


def test_census_assets_never_imports_the_tests_or_the_benchmark():
    sources = list((ROOT / "census_assets").rglob("*.py"))
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        for line in path.read_text().splitlines()
        if line.lstrip().startswith(("import ", "from "))
        and line.split()[1].split(".")[0] in ("census_assets_tests", "benchmarks")
    ]
    assert sources and not offenders


def test_the_floor_graph_has_the_training_selections_shape():
    """Rebuilt from the real Definitions, the floor has the same ops, assets, edges and blocking
    checks, and passes a value (None, in memory) along each edge where the real graph passes one;
    its ops only report success."""
    shape = graph_shape(defs, TRAINING_SELECTION)
    floor = floor_definitions(shape)
    assert graph_shape(floor, TRAINING_SELECTION) == shape
    assets = {tuple(asset["key"]) for op in shape["ops"] for asset in op["assets"]}
    checks = [check for op in shape["ops"] for check in op["checks"]]
    assert {("raw_census",), ("cv_accuracy",), ("lgbm_model",), ("production_model",)} <= assets
    assert any(check["blocking"] for check in checks) and shape["executor"] == defs.executor.name
    ops = {op["name"]: op for op in shape["ops"]}
    # production_model reads values and hands none to the IO manager; raw_census stores its table.
    assert ["lgbm_model"] in ops["production_model"]["inputs"] and not ops["production_model"]["assets"][0]["stored"]
    assert ops["raw_census"]["assets"][0]["stored"] and ops["raw_census"]["inputs"] == []  # its source: no value

    result = dg.materialize([*floor.assets, *floor.asset_checks], selection=TRAINING_SELECTION)
    assert result.success
    events = [event.event_type_value for event in result.all_events]
    assert events.count("LOADED_INPUT") == sum(len(op["inputs"]) for op in shape["ops"])
    stored = sum(asset["stored"] for op in shape["ops"] for asset in op["assets"])
    assert events.count("HANDLED_OUTPUT") == stored > 0
    assert len(result.get_asset_materialization_events()) == len(assets)
    assert [evaluation.passed for evaluation in result.get_asset_check_evaluations()] == [True] * len(checks)
