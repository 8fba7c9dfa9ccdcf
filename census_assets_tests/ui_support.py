"""Old home of the webserver fixtures, kept until every test imports census_assets_tests.harness."""

from census_assets_tests.harness.dagster import WEBSERVER_ONLY_YAML as DAGSTER_YAML
from census_assets_tests.harness.processes import REPO_ROOT, inherited_environment

__all__ = ["DAGSTER_YAML", "REPO_ROOT", "inherited_environment"]
