"""Old home of the daemon deployment, kept until every test imports census_assets_tests.harness."""

from census_assets_tests.harness.dagster import dagster_deployment as dagster_daemon_instance

__all__ = ["dagster_daemon_instance"]
