"""Old home of the graph runner's helpers, kept until every test imports census_assets_tests.harness."""

from census_assets_tests.harness.runner import step_failure_message

__all__ = ["step_failure_message"]
