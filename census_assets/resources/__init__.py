"""Dagster resources, one module each: source, training, lifecycle, notifier, dask, warehouse, inbox."""
