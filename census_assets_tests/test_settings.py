"""The environment variables are the public contract: defaults and clear errors, each declared once."""

import ast
from pathlib import Path

import dagster as dg
import pytest

from census_assets.definitions import build_resources
from census_assets.settings import (
    ACCURACY_THRESHOLD,
    GCP_CREDENTIALS,
    SETTINGS,
    SettingsError,
    configuration_markdown,
    load_environment,
    setting,
    setting_field,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "census_assets"
GCP_ENV = {
    "CENSUS_DEPLOYMENT": "gcp",
    "GCP_PROJECT": "census-project",
    "CENSUS_GCS_BUCKET": "b",
    "CENSUS_BQ_DATASET": "d",
}


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_environment({})
    assert settings.source == "bundled"
    assert settings.storage_url == str(tmp_path / "census_storage")
    assert settings.accuracy_threshold == setting(ACCURACY_THRESHOLD).default_value == 0.8
    assert (settings.deployment, settings.executor, settings.workers) == ("local", "in_process", 0)


def test_values_are_read():
    settings = load_environment(
        {
            "CENSUS_SOURCE": "gs://b/census.parquet",
            "CENSUS_STORAGE_URL": "gs://bucket/prefix",
            "CENSUS_ACCURACY_THRESHOLD": "0.85",
            "CENSUS_WORKERS": "1",
        }
    )
    assert settings.source == "gs://b/census.parquet"
    assert settings.storage_url == "gs://bucket/prefix"
    assert settings.accuracy_threshold == 0.85 and settings.workers == 1


def test_relative_storage_is_made_absolute():
    assert Path(load_environment({"CENSUS_STORAGE_URL": "out"}).storage_url).is_absolute()


@pytest.mark.parametrize(
    "env,message",
    [
        ({"CENSUS_ACCURACY_THRESHOLD": "high"}, "CENSUS_ACCURACY_THRESHOLD='high' is not a number"),
        ({"CENSUS_ACCURACY_THRESHOLD": "1.5"}, "must be between 0 and 1"),
        ({"CENSUS_DEPLOYMENT": "aws"}, "CENSUS_DEPLOYMENT='aws' is not one of local, gcp"),
        ({"CENSUS_EXECUTOR": "celery"}, "CENSUS_EXECUTOR='celery'"),
        ({"CENSUS_WORKERS": "-1"}, "CENSUS_WORKERS='-1' must be a whole number"),
        # A superscript passes str.isdigit but not int(): refused with the name, not a ValueError.
        ({"CENSUS_WORKERS": "²"}, "CENSUS_WORKERS='²' must be a whole number"),
        ({"CENSUS_DASK_FIT_MIN_ROWS": "1e6"}, "CENSUS_DASK_FIT_MIN_ROWS='1e6' must be a whole number of rows"),
        ({"CENSUS_INBOX_INTERVAL_SECONDS": "0"}, "CENSUS_INBOX_INTERVAL_SECONDS='0' must be a whole number of seconds"),
        ({"CENSUS_INBOX_URL": "s3://b/in"}, "CENSUS_INBOX_URL='s3://b/in' must be a local folder or a gs://"),
        ({"CENSUS_LABELS_URL": "https://b/l/"}, "CENSUS_LABELS_URL='https://b/l' must be a local folder or a gs://"),
        ({"CENSUS_HOLDOUT": "s3://b/holdout.csv"}, "CENSUS_HOLDOUT='s3://b/holdout.csv' must be `bundled`"),
        ({"CENSUS_HOLDOUT": "bq://p.d"}, "CENSUS_HOLDOUT: BigQuery source 'bq://p.d' must be bq://project.dataset.table"),
        ({"CENSUS_HOLDOUT": "bq://census-project.d.t;drop"}, "table name 't;drop' is not a valid BigQuery identifier"),
        ({"CENSUS_GROUP_COLUMNS": "sex,gender"}, "'gender' not in the source schema (age, workclass"),
        ({"CENSUS_GROUP_COLUMNS": "sex,sex"}, "CENSUS_GROUP_COLUMNS='sex,sex' must name at least one source column"),
        ({"CENSUS_GROUP_COLUMNS": ", ,"}, "CENSUS_GROUP_COLUMNS=', ,' must name at least one source column"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError) as error:
        load_environment(env)
    assert message in str(error.value)


def test_labels_holdout_and_groups(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = load_environment({"CENSUS_STORAGE_URL": "/srv/census"})
    assert (default.labels, default.inbox) == ("/srv/census/labels", "/srv/census/inbox")
    assert default.holdout == "bundled" and default.group_columns == ["sex", "race"]

    chosen = load_environment(
        {
            "CENSUS_LABELS_URL": "gs://b/labels/",
            "CENSUS_HOLDOUT": "mine/holdout.parquet",
            "CENSUS_GROUP_COLUMNS": " race , age ",
        }
    )
    assert chosen.labels == "gs://b/labels"
    assert chosen.holdout == str(tmp_path / "mine" / "holdout.parquet")  # absolute, as the storage is
    assert chosen.group_columns == ["race", "age"]
    assert load_environment({"CENSUS_LABELS_URL": "labels"}).labels == str(tmp_path / "labels")
    for table in ("gs://b/holdout.csv", "bq://census-project.census.holdout"):
        assert load_environment({"CENSUS_HOLDOUT": table}).holdout == table


def test_the_key_is_in_the_environment_and_secrets_stay_out_of_its_repr():
    secrets = {declared.variable: f"https://hooks.example.com/{declared.variable}-s3cr3t" for declared in SETTINGS
               if declared.secret}
    settings = load_environment({**secrets, "CENSUS_SLACK_CHANNEL": "#ml-alerts"})
    assert settings.gcp_credentials == secrets[GCP_CREDENTIALS] and settings.gcp_key_in_env
    assert "s3cr3t" not in repr(settings)
    assert not load_environment({}).gcp_key_in_env and load_environment({}).gcp_credentials == ""


def test_every_default_is_valid_and_is_what_an_unset_variable_gives(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_environment({})
    made_absolute = {"storage_url": str(tmp_path / "census_storage")}
    for declared in SETTINGS:
        if declared.field:
            expected = made_absolute.get(declared.field, declared.default_value)
            assert getattr(settings, declared.field) == expected, declared.variable


def test_gcp_defaults_apply_only_to_unset_variables():
    assert load_environment(GCP_ENV).source.startswith("bq://")
    assert load_environment({**GCP_ENV, "CENSUS_SOURCE": "gs://b/census.csv"}).source == "gs://b/census.csv"
    assert load_environment({**GCP_ENV, "CENSUS_GCS_PREFIX": "/"}).storage_url == "gs://b/census_assets"
    assert load_environment({"CENSUS_BQ_DATASET": "d"}).bq_dataset == ""  # nothing is published locally


def test_setting_field_takes_default_and_description_from_the_declaration():
    threshold = setting_field(ACCURACY_THRESHOLD)
    assert threshold.default == 0.8
    assert threshold.description == f"CENSUS_ACCURACY_THRESHOLD: {setting(ACCURACY_THRESHOLD).description}"
    assert setting_field(ACCURACY_THRESHOLD, default=...).is_required()
    key = setting_field(GCP_CREDENTIALS, default=None)
    assert key.default is None and key.json_schema_extra == {"dagster__is_secret": True}
    assert key.description.startswith("GCP_CREDENTIALS (a secret")


def _declared_variable(description: str | None) -> str | None:
    """The variable a field description starts with, if it is a declared setting."""
    head = (description or "").split(":")[0].split(" (")[0]
    return head if any(head == declared.variable for declared in SETTINGS) else None


def _resource_paths(resources: dict) -> dict[str, dg.ConfigurableResource]:
    """Every resource by its dotted path, nested resources included ("io_manager.storage")."""
    paths, todo = {}, list(resources.items())
    while todo:
        path, resource = todo.pop()
        paths[path] = resource
        for name in type(resource).model_fields:
            if isinstance(nested := getattr(resource, name), dg.ConfigurableResource | dg.ConfigurableIOManager):
                todo.append((f"{path}.{name}", nested))
    return paths


def test_resource_fields_come_from_the_declarations():
    """Every declared place exists and takes the declared default and description (setting_field);
    every resource field whose description names a setting is one of its declared places."""
    # gcp: the BigQuery IO manager is bound too
    paths = _resource_paths(build_resources(load_environment(GCP_ENV)))
    ours = {path: value for path, value in paths.items() if type(value).__module__.startswith("census_assets.")}
    problems = []
    for declared in SETTINGS:
        for target in declared.resources:
            path, name = target.rsplit(".", 1)
            fields = type(paths[path]).model_fields if path in paths else {}
            if name not in fields:
                problems.append(f"{declared.variable}: no resource field {target}")
            elif path in ours:
                expected = setting_field(declared.variable)
                if fields[name].description != expected.description:
                    problems.append(f"{target}: description not from {declared.variable}'s declaration (setting_field)")
                # A secret's default is never used (an EnvVar is bound); a required field has none.
                if not (declared.secret or fields[name].is_required()) and fields[name].default != expected.default:
                    problems.append(f"{target}: default {fields[name].default!r} is not {expected.default!r}")
    for path, resource in ours.items():
        # A nested resource shared by several parents is declared under one of its paths.
        aliases = [other for other, same in ours.items() if same is resource]
        for name, info in type(resource).model_fields.items():
            variable = _declared_variable(info.description)
            if variable and not {f"{alias}.{name}" for alias in aliases} & set(setting(variable).resources):
                problems.append(f"{path}.{name} names {variable}, whose declaration does not list it")
    assert not problems, "\n".join(sorted(set(problems)))


def test_the_configuration_page_is_generated_from_the_declarations():
    page = ROOT / "docs" / "configuration.md"
    assert page.read_text() == configuration_markdown(), (
        "docs/configuration.md differs from the declarations: regenerate it with the command at its top"
    )
    for declared in SETTINGS:
        assert f"| `{declared.variable}` |" in page.read_text()


ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb"}
# Setting a variable for a library or a child process, result unused, is not reading a setting.
WRITING_METHODS = {"setdefault", "update", "pop"}


def environment_reads(source: str) -> list[int]:
    """The lines of `source` that read the process environment (os.environ, os.getenv)."""
    tree = ast.parse(source)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(alias.name in ENVIRONMENT_NAMES for alias in node.names):
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ENVIRONMENT_NAMES
        ):
            above = parent[node]
            stored = isinstance(above, ast.Subscript) and isinstance(above.ctx, ast.Store | ast.Del)
            written = (
                isinstance(above, ast.Attribute)
                and above.attr in WRITING_METHODS
                and isinstance(parent[above], ast.Call)
                and isinstance(parent[parent[above]], ast.Expr)
            )
            if not (stored or written):
                lines.append(node.lineno)
    return sorted(lines)


def test_environment_reads_are_found():
    assert environment_reads("import os\nx = os.environ.get('A')\ny = os.getenv('B')\nz = {**os.environ}\n") == [
        2, 3, 4
    ]
    assert environment_reads("from os import environ\n") == [1]
    assert environment_reads("import os\nos.environ.setdefault('A', '1')\nos.environ['B'] = '2'\n") == []


def test_only_settings_reads_the_environment():
    readers = {
        str(path.relative_to(ROOT)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "settings.py" and (lines := environment_reads(path.read_text()))
    }
    assert readers == {}, f"read the environment through census_assets.settings instead: {readers}"

