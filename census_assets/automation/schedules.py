"""Schedules: the weekly retrain (off by default; turn it on in the UI)."""

import dagster as dg

from census_assets.automation.jobs import census_pipeline

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=census_pipeline,
    cron_schedule="0 3 * * 1",  # Mondays 03:00
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain the census model every week.",
)
