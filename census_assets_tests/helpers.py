"""Helpers shared by the Dagster-level tests."""

import dagster as dg

from census_assets.assets.census import TRAINING_ASSETS
from census_assets.automation.sensors import census_run_failure_alert
from census_assets.checks.training import cv_accuracy_meets_threshold
from census_assets.definitions import build_resources
from census_assets.settings import load_environment


def materialize_census(env: dict, selection=None, instance=None) -> dg.ExecuteInProcessResult:
    """Run the census graph in-process with settings read from an env-like mapping."""
    return dg.materialize(
        [*TRAINING_ASSETS, cv_accuracy_meets_threshold],
        resources=build_resources(load_environment(env)),
        selection=selection,
        instance=instance,
        raise_on_error=False,
    )


def snapshot(directory) -> dict:
    """File name -> bytes of every artifact, to prove a failed run changed nothing."""
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}


def step_failure_message(result, step_key: str) -> str:
    """The error text of a failed step: the Failure description or the exception message."""
    for event in result.all_events:
        if event.is_step_failure and event.step_key == step_key:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description
            return data.error.message
    raise AssertionError(f"step {step_key} did not fail")


def failure_context(result, instance, notifier) -> dg.RunFailureSensorContext:
    """The context census_run_failure_alert gets for the failed in-process run `result`."""
    return dg.build_run_status_sensor_context(
        sensor_name=census_run_failure_alert.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"notifier": notifier},
    ).for_run_failure()
