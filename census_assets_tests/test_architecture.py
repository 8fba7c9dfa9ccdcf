"""The layering written in docs/architecture.md holds: each module imports only the layers its row lists."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "census_assets"
DOC = ROOT / "docs" / "architecture.md"


def allowed_imports() -> dict[str, set[str]]:
    rows = re.findall(r"^\| (\w+) \|([^|\n]*)\|$", DOC.read_text(), re.MULTILINE)
    return {layer: {name.strip() for name in names.split(",") if name.strip()} for layer, names in rows}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield ".".join(path.relative_to(ROOT).with_suffix("").parts), path


def test_every_layer_is_in_the_table():
    layers = {layer_of(module) for module, _ in modules()} - {"__init__", "__main__"}
    missing = layers - set(allowed_imports())
    assert not missing, f"layers missing from docs/architecture.md: {missing}"


def test_each_module_imports_only_the_layers_its_row_allows():
    rules, wrong = allowed_imports(), []
    for module, path in modules():
        layer = layer_of(module)
        if layer == "__init__":
            continue
        for imported in imports(path):
            if imported.startswith(("census_assets_tests", "benchmarks")):
                wrong.append(f"{module} imports {imported} (tests and benchmarks are not part of the package)")
            elif imported.startswith("census_assets.") and layer_of(imported) not in rules[layer] | {layer}:
                wrong.append(f"{module} imports {imported}: {layer} may import {sorted(rules[layer]) or 'nothing'}")
    assert not wrong, "\n".join(wrong)


def test_the_rule_is_not_vacuous():
    """A module that broke the rule would be caught: core importing Dagster-side code is refused."""
    rules = allowed_imports()
    assert rules["core"] == set() and "assets" not in rules["storage"] and "cli" not in rules["definitions"]
