"""Dagster assets, one module per concern: source, training (census), feature_table, evaluation,
promotion, scoring, batches; specs.py decides every asset's spec (group, pool, kinds, storage)."""
