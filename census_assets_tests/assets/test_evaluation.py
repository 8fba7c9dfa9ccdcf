"""assets/evaluation.py's guard: a promotion refuses data materialised after the model."""

import dagster as dg
import pytest

from census_assets.assets.evaluation import refuse_if_refitted


def materialise(instance: dg.DagsterInstance, *names: str) -> None:
    for name in names:  # one run each, in order: later names are later materialisations
        instance.report_runless_asset_event(dg.AssetMaterialization(name))


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def guard(instance: dg.DagsterInstance, *upstreams: str) -> None:
    refuse_if_refitted(dg.build_asset_context(instance=instance), *upstreams)


@pytest.mark.parametrize("history", [(), ("raw_census",), ("lgbm_model",), ("raw_census", "lgbm_model")])
def test_data_not_materialised_after_the_model_passes(instance, history):
    """Nothing materialised on this instance (a model from storage), or the data first: no refusal."""
    materialise(instance, *history)
    guard(instance, "clean_census", "raw_census")


def test_data_materialised_after_the_model_is_refused_by_name(instance):
    materialise(instance, "clean_census", "lgbm_model", "raw_census")
    with pytest.raises(dg.Failure, match="raw_census was materialised after lgbm_model"):
        guard(instance, "clean_census", "raw_census")
