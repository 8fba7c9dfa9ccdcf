"""Dagster's floor for a run: the same graph with bodies that do nothing.

graph_shape reads, from real Definitions, what a selection runs: each op (an asset, a multi-asset
or an asset check) with its assets, their groups and dependencies and whether a value of theirs
goes to an IO manager, the assets whose values it loads as inputs, and its checks with their
dependencies and whether they block; floor_definitions builds Definitions of that shape whose ops
only report success, with the same executor. Where the real graph passes a value along an edge,
the floor passes None through Dagster's in-memory IO manager: Dagster's own work for the edge (its
input and output events) is in the floor, the project's storage is not. `dagster asset
materialize` with the same selection then times what Dagster alone costs for that graph. The shape
is plain JSON, so the floor's code location (benchmarks.floor_location) loads with Dagster alone,
not the project's imports.
"""

import typing

import dagster as dg

# The environment variable that names the shape file for benchmarks.floor_location.
SHAPE_VARIABLE = "FLOOR_SHAPE"
EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}
# Where AssetSpec.with_io_manager_key puts the key, which gives a spec-built asset an output value.
_IO_MANAGER_KEY = "dagster/io_manager_key"


def check_shape(spec: dg.AssetCheckSpec) -> dict:
    return {
        "asset": spec.asset_key.path,
        "name": spec.name,
        "blocking": spec.blocking,
        "deps": sorted(dep.asset_key.path for dep in spec.additional_deps),
    }


def _stores_a_value(assets_def: dg.AssetsDefinition, key: dg.AssetKey) -> bool:
    """Whether the asset's value goes to an IO manager: its output has a type other than Nothing
    and Any (what an asset returning a MaterializeResult declares), or (an asset built from specs,
    as the floor's are) its spec names the IO manager."""
    output_type = assets_def.node_def.output_def_named(assets_def.get_output_name_for_asset_key(key)).dagster_type
    typed = not output_type.is_nothing and output_type.typing_type is not typing.Any
    return typed or _IO_MANAGER_KEY in assets_def.specs_by_key[key].metadata


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
        node = assets_def.node_def
        ops.append(
            {
                "name": node.name,
                "assets": [
                    {
                        "key": key.path,
                        "group": graph.get(key).group_name,
                        "deps": sorted(parent.path for parent in graph.get(key).parent_keys),
                        "stored": _stores_a_value(assets_def, key),
                    }
                    for key in assets
                ],
                "inputs": sorted(
                    assets_def.keys_by_input_name[input_def.name].path
                    for input_def in node.input_defs
                    if not input_def.dagster_type.is_nothing  # Nothing: a dependency without a value
                ),
                "checks": [check_shape(assets_def.get_spec_for_check_key(key)) for key in checks],
            }
        )
    return {"executor": definitions.executor.name, "ops": sorted(ops, key=lambda op: op["name"])}


def _passed(keys):
    for key in keys:
        yield dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=True)


def _materialize(context: dg.AssetExecutionContext, **inputs):
    for key in context.selected_asset_keys:
        stored = _stores_a_value(context.assets_def, key)
        yield dg.MaterializeResult(asset_key=key, value=None) if stored else dg.MaterializeResult(asset_key=key)
    yield from _passed(context.selected_asset_check_keys)


def _check(context: dg.AssetCheckExecutionContext, **inputs):
    yield from _passed(context.selected_asset_check_keys)


def _ins(op: dict) -> dict[str, dg.AssetIn]:
    return {f"input_{i}": dg.AssetIn(key=dg.AssetKey(path)) for i, path in enumerate(op["inputs"])}


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
        needed.update(tuple(path) for path in op["inputs"])
        if op["assets"]:
            specs = []
            for asset in op["assets"]:
                spec = dg.AssetSpec(
                    asset["key"], group_name=asset["group"], deps=[dg.AssetKey(dep) for dep in asset["deps"]]
                )
                specs.append(spec.with_io_manager_key("io_manager") if asset["stored"] else spec)
            defined.update(tuple(asset["key"]) for asset in op["assets"])
            needed.update(tuple(dep) for asset in op["assets"] for dep in asset["deps"])
            assets.append(
                dg.multi_asset(name=op["name"], specs=specs, check_specs=check_specs, ins=_ins(op))(_materialize)
            )
        else:
            checks.append(dg.multi_asset_check(name=op["name"], specs=check_specs, ins=_ins(op))(_check))
    # What the selection depends on but does not run (the observed source): declared, not run.
    external = [dg.AssetSpec(dg.AssetKey(list(key))) for key in sorted(needed - defined)]
    return dg.Definitions(
        assets=[*assets, *external],
        asset_checks=checks,
        executor=EXECUTORS[shape["executor"]],
        # The values passed along the edges are None, kept in memory: Dagster's part of an edge.
        resources={"io_manager": dg.mem_io_manager},
    )
