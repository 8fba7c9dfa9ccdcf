"""The code location: assets, checks, jobs, schedules, sensors, and resources chosen in one place."""

import dagster as dg

from census_assets.assets.census import census_assets
from census_assets.automation import census_pipeline, census_source_changed, weekly_retrain
from census_assets.checks import cv_accuracy_meets_threshold
from census_assets.resources import CensusSource, TrainingSettings
from census_assets.settings import Settings, load_settings
from census_assets.storage import CensusIOManager

EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}


def build_resources(settings: Settings) -> dict:
    return {
        "io_manager": CensusIOManager(base_url=settings.storage_url),
        "source": CensusSource(uri=settings.source),
        "training": TrainingSettings(
            accuracy_threshold=settings.accuracy_threshold, workers=settings.workers
        ),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=census_assets,
        asset_checks=[cv_accuracy_meets_threshold],
        jobs=[census_pipeline],
        schedules=[weekly_retrain],
        sensors=[census_source_changed],
        resources=build_resources(settings),
        # The graph is a chain: one process avoids paying a Python start-up per step.
        executor=EXECUTORS[settings.executor],
    )


defs = build_definitions(load_settings())
