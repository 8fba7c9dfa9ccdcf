"""census_assets: the census never_married ML pipeline as a Dagster code location.

`defs`, the code location, is built on first access (`dagster -m census_assets` asks for it):
importing a submodule, such as the run coordinator the webserver and the daemon load from
dagster.yaml or the `census-assets` CLI, neither builds it nor reads the CENSUS_* variables.
"""

from census_assets.core.lightgbm_runtime import import_long_lived

__all__ = ["defs"]


def __getattr__(name: str):
    if name == "defs":
        # The code location's modules (pandas', ours and what they import) live as long as the
        # process: imported with the collector paused and frozen after, as LightGBM's are.
        import_long_lived("census_assets.definitions")
        from census_assets.definitions import defs

        globals()["defs"] = defs
        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "defs"})
