"""Dagster resources, one module each: storage (artifact storage and the model registry), source,
training, lifecycle, notifier, dask, warehouse, inbox."""
