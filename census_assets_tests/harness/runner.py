"""One way to run the census graph in the test process, and to read what the run did.

`run_graph` builds the code location's own definitions from an env-like mapping of settings, as a
deployment reads its environment, and runs them with dg.materialize: every asset and check, or a
selection of them (their checks included). Resource fields that no setting reaches, such as the
CV protocol or the champion tolerance, are changed by naming the resource: `training={...}`.
"""

from collections.abc import Mapping, Sequence

import dagster as dg

from census_assets.definitions import build_definitions
from census_assets.settings import load_environment

# raw_census..lgbm_model: a selection of them runs the training graph and its accuracy gate, no
# lifecycle (registry, drift, scoring).
TRAINING_CHAIN = ("raw_census", "clean_census", "features", "cv_accuracy", "lgbm_model")
# One repeat of the 5-fold CV: the same protocol, a third of the fits.
ONE_CV_REPEAT = {"n_repeats": 1}
# The same for a run launched through a deployment (GraphQL, the UI's launchpad): its run config.
ONE_CV_REPEAT_RUN_CONFIG = {"resources": {"training": {"config": ONE_CV_REPEAT}}}


def with_fields(resource: dg.ConfigurableResource, **fields) -> dg.ConfigurableResource:
    """A copy of `resource` with some fields changed (a pydantic model_copy keeps the old config)."""
    current = {name: getattr(resource, name) for name in type(resource).model_fields}
    return type(resource)(**{**current, **fields})


def run_graph(
    env: Mapping[str, str] | None = None,
    *,
    selection: Sequence[str] | None = None,
    instance: dg.DagsterInstance | None = None,
    run_config: dict | None = None,
    tags: Mapping[str, str] | None = None,
    **resource_fields: Mapping | None,
) -> dg.ExecuteInProcessResult:
    """The graph as the census_pipeline job runs it, in this process; a failed step fails the
    result (`result.success`), it does not raise. `resource_fields`: resource name -> the fields
    to change in it, e.g. `training=ONE_CV_REPEAT, lifecycle={"champion_tolerance": 1.0}`."""
    defs = build_definitions(load_environment(dict(env or {})))
    resources = dict(defs.resources)
    for name, fields in resource_fields.items():
        if fields:
            resources[name] = with_fields(resources[name], **fields)
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        resources=resources,
        selection=selection,
        instance=instance,
        run_config=run_config,
        tags=tags,
        raise_on_error=False,
    )


# Reading a result


def failure_messages(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Step key -> what made each failed step fail: the Failure's description, then every error
    message down the cause chain (an IO manager's error arrives wrapped), one per line."""
    messages = {}
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            parts = [data.user_failure_data.description if data.user_failure_data else None]
            error = data.error
            while error is not None:
                parts.append(error.message)
                error = error.cause
            messages[event.step_key] = "\n".join(part for part in parts if part)
    return messages


def step_failure_message(result: dg.ExecuteInProcessResult, step_key: str) -> str:
    messages = failure_messages(result)
    if step_key not in messages:
        raise AssertionError(f"step {step_key} did not fail; failed: {sorted(messages)}")
    return messages[step_key]


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """Asset -> the metadata values of its materialization in this run (assets not materialized
    are absent)."""
    return {
        event.asset_key.to_user_string(): {key: value.value for key, value in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    """Check name -> its evaluation in this run."""
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def failure_context(result, instance, notifier) -> dg.RunFailureSensorContext:
    """The context the sensor census_run_failure_alert gets for the failed in-process run `result`."""
    return dg.build_run_status_sensor_context(
        sensor_name="census_run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources={"notifier": notifier},
    ).for_run_failure()
