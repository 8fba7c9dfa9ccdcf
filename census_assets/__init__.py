"""census_assets: the census never_married ML pipeline as a Dagster code location."""

from census_assets.core.lightgbm_runtime import _import_long_lived

# The code location's modules (pandas', ours and what they import) live as long as the process:
# imported with the collector paused and frozen after, as LightGBM's are (_import_long_lived).
_import_long_lived("census_assets.definitions")

from census_assets.definitions import defs  # noqa: E402  (imported, and frozen, just above)

__all__ = ["defs"]
