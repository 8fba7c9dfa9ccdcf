"""Old home of the PostgreSQL server, kept until every test imports census_assets_tests.harness."""

from census_assets_tests.harness.postgres import PostgresServer

__all__ = ["PostgresServer"]
