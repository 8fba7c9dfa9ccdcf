"""The Kubernetes executor option loads (Kubernetes itself is not run in tests)."""

from census_assets.definitions import build_definitions
from census_assets.settings import load_environment


def test_k8s_executor_is_a_setting():
    defs = build_definitions(load_environment({"CENSUS_EXECUTOR": "k8s"}))
    executor = defs.resolve_job_def("census_pipeline").executor_def
    assert executor.name == "k8s"
    # Step pods get their resources and env (CENSUS_DASK_ADDRESS, ...) from run config or tags.
    assert "job_namespace" in executor.config_schema.as_field().config_type.fields
