"""Dagster's floor for a run: the same graph with bodies that do nothing.

graph_shape reads, from real Definitions, what a selection runs: each op (an asset, a multi-asset
or an asset check) with its assets, their groups and dependencies, and its checks with their
dependencies and whether they block; floor_definitions builds Definitions of that shape whose ops
only report success, with the same executor. `dagster asset materialize` with the same selection
then times what Dagster alone costs for that graph. The shape is plain JSON, so the floor's code
location (benchmarks.floor_location) loads with Dagster alone, not the project's imports.
"""

import dagster as dg

# The environment variable that names the shape file for benchmarks.floor_location.
SHAPE_VARIABLE = "FLOOR_SHAPE"
EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}


def check_shape(spec: dg.AssetCheckSpec) -> dict:
    return {
        "asset": spec.asset_key.path,
        "name": spec.name,
        "blocking": spec.blocking,
        "deps": sorted(dep.asset_key.path for dep in spec.additional_deps),
    }


def graph_shape(definitions: dg.Definitions, selection: str) -> dict:
    graph = definitions.resolve_asset_graph()
    chosen = dg.AssetSelection.from_string(selection)
    asset_keys, check_keys = chosen.resolve(graph), chosen.resolve_checks(graph)
    ops = []
    for assets_def in graph.assets_defs:
        assets = sorted(key for key in assets_def.keys if key in asset_keys)
        checks = sorted(key for key in assets_def.check_keys if key in check_keys)
        if not assets and not checks:
            continue
        ops.append(
            {
                "name": assets_def.node_def.name,
                "assets": [
                    {
                        "key": key.path,
                        "group": graph.get(key).group_name,
                        "deps": sorted(parent.path for parent in graph.get(key).parent_keys),
                    }
                    for key in assets
                ],
                "checks": [check_shape(assets_def.get_spec_for_check_key(key)) for key in checks],
            }
        )
    return {"executor": definitions.executor.name, "ops": sorted(ops, key=lambda op: op["name"])}


def _passed(keys):
    for key in keys:
        yield dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=True)


def _materialize(context: dg.AssetExecutionContext):
    for key in context.selected_asset_keys:
        yield dg.MaterializeResult(asset_key=key)
    yield from _passed(context.selected_asset_check_keys)


def _check(context: dg.AssetCheckExecutionContext):
    yield from _passed(context.selected_asset_check_keys)


def floor_definitions(shape: dict) -> dg.Definitions:
    assets, checks, defined, needed = [], [], set(), set()
    for op in shape["ops"]:
        check_specs = [
            dg.AssetCheckSpec(
                check["name"],
                asset=dg.AssetKey(check["asset"]),
                blocking=check["blocking"],
                additional_deps=[dg.AssetKey(dep) for dep in check["deps"]],
            )
            for check in op["checks"]
        ]
        needed.update(tuple(check["asset"]) for check in op["checks"])
        needed.update(tuple(dep) for check in op["checks"] for dep in check["deps"])
        if op["assets"]:
            specs = [
                dg.AssetSpec(asset["key"], group_name=asset["group"], deps=[dg.AssetKey(dep) for dep in asset["deps"]])
                for asset in op["assets"]
            ]
            defined.update(tuple(asset["key"]) for asset in op["assets"])
            needed.update(tuple(dep) for asset in op["assets"] for dep in asset["deps"])
            assets.append(dg.multi_asset(name=op["name"], specs=specs, check_specs=check_specs)(_materialize))
        else:
            checks.append(dg.multi_asset_check(name=op["name"], specs=check_specs)(_check))
    # What the selection depends on but does not run (the observed source): declared, not run.
    external = [dg.AssetSpec(dg.AssetKey(list(key))) for key in sorted(needed - defined)]
    return dg.Definitions(
        assets=[*assets, *external],
        asset_checks=checks,
        executor=EXECUTORS[shape["executor"]],
    )
