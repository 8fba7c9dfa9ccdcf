"""Dagster assets, one module per concern: source, training (census), feature_table, evaluation,
promotion, scoring, batches."""
