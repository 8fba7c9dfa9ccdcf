"""census_assets: the census never_married ML pipeline as a Dagster code location."""

from census_assets.definitions import defs

__all__ = ["defs"]
