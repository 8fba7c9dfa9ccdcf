"""Old home of the Google Cloud emulators, kept until every caller imports census_assets_tests.harness."""

from census_assets_tests.harness.emulators import BQ_PROJECT, OFFLINE_AUTH_ENV, start_gcs_emulator

__all__ = ["BQ_PROJECT", "OFFLINE_AUTH_ENV", "start_gcs_emulator"]
