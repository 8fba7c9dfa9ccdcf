"""The census source in the lineage: `census_source`, an observable source asset upstream of
raw_census whose data version is the source's fingerprint. In-process (harness.runner's
dg.materialize observes it), one small CSV source, no daemon."""

import os

import dagster as dg
import pytest

# What the UI's "changed upstream" badge reads, through Dagster's own test helper.
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from census_assets.assets.source import CENSUS_SOURCE, DATA_VERSION_TAG, VERSION_SINCE
from census_assets.automation.sensors import census_source_changed
from census_assets.definitions import build_definitions
from census_assets.resources.source import CensusSource
from census_assets.settings import load_environment
from census_assets_tests.harness.runner import failure_messages, run_graph, step_failure_message

pytestmark = pytest.mark.ops

RAW_CENSUS = dg.AssetKey("raw_census")


@pytest.fixture
def source(tmp_path, bundled_raw):
    path = tmp_path / "census.csv"
    bundled_raw.head(2000).to_csv(path, index=False)
    return path


class Lineage:
    """The real definitions on one source and storage, with an instance that remembers events."""

    def __init__(self, tmp_path, source):
        self.source = source
        self.env = {"CENSUS_SOURCE": str(source), "CENSUS_STORAGE_URL": str(tmp_path / "storage")}
        self.defs = build_definitions(load_environment(self.env))
        self.instance = dg.DagsterInstance.ephemeral()
        self.assets = list(self.defs.assets)

    def run(self, *selection: str) -> dg.ExecuteInProcessResult:
        result = run_graph(self.env, selection=selection, instance=self.instance)
        assert result.success, failure_messages(result)
        return result

    def observe(self) -> dg.ExecuteInProcessResult:
        return self.run("census_source")

    def observation(self):
        """The latest observation of census_source: (data version, metadata values)."""
        entry = self.instance.get_latest_data_version_record(CENSUS_SOURCE, is_source=True).event_log_entry
        return entry.tags[DATA_VERSION_TAG], {k: v.value for k, v in entry.asset_observation.metadata.items()}

    def stale(self) -> tuple[StaleStatus, list]:
        resolver = get_stale_status_resolver(self.instance, self.assets)
        causes = [(cause.dependency.asset_key, cause.reason) for cause in resolver.get_stale_causes(RAW_CENSUS)]
        return resolver.get_status(RAW_CENSUS), causes


def test_census_source_is_an_observable_source_upstream_of_raw_census(tmp_path, source):
    graph = Lineage(tmp_path, source).defs.resolve_asset_graph()
    node = graph.get(CENSUS_SOURCE)
    assert node.is_observable and not node.is_materializable
    assert node.automation_condition is None  # not given the eager condition of the graph below it
    assert CENSUS_SOURCE in graph.get(RAW_CENSUS).parent_keys
    assert node.group_name == graph.get(RAW_CENSUS).group_name


def test_observation_version_is_the_fingerprint_and_follows_content_not_mtime(tmp_path, source, bundled_raw):
    lineage = Lineage(tmp_path, source)
    fingerprint = CensusSource(uri=str(source)).fingerprint()
    lineage.observe()
    version, metadata = lineage.observation()
    assert version == fingerprint and metadata["fingerprint"] == fingerprint
    assert metadata["source"] == str(source)
    first_seen = metadata[VERSION_SINCE]

    stat = source.stat()
    os.utime(source, (stat.st_atime + 60, stat.st_mtime + 60))  # a touch: same bytes, newer mtime
    lineage.observe()
    assert lineage.observation()[0] == fingerprint
    assert lineage.observation()[1][VERSION_SINCE] == first_seen  # still the version first seen then

    bundled_raw.head(2001).to_csv(source, index=False)
    lineage.observe()
    changed, metadata = lineage.observation()
    assert changed == CensusSource(uri=str(source)).fingerprint() != fingerprint
    assert metadata[VERSION_SINCE] >= first_seen


def test_raw_census_is_stale_after_the_source_changes_and_not_after_a_touch(tmp_path, source, bundled_raw):
    lineage = Lineage(tmp_path, source)
    # As the automation sensor would: any_deps_updated() on raw_census, evaluated tick by tick.
    follows = dg.Definitions(
        assets=dg.map_asset_specs(
            lambda spec: spec.replace_attributes(
                automation_condition=dg.AutomationCondition.any_deps_updated() if spec.key == RAW_CENSUS else None
            ),
            lineage.assets,
        ),
        resources=lineage.defs.resources,
    )
    result = lineage.run("census_source", "raw_census")  # observe, then materialise from that version
    [materialization] = result.asset_materializations_for_node("raw_census")
    input_version = materialization.tags[f"dagster/input_data_version/{CENSUS_SOURCE.to_user_string()}"]
    assert input_version == lineage.observation()[0]
    assert lineage.stale() == (StaleStatus.FRESH, [])
    tick = dg.evaluate_automation_conditions(defs=follows, instance=lineage.instance)

    os.utime(source)
    lineage.observe()
    assert lineage.stale() == (StaleStatus.FRESH, [])
    tick = dg.evaluate_automation_conditions(defs=follows, instance=lineage.instance, cursor=tick.cursor)
    assert tick.get_num_requested(RAW_CENSUS) == 0

    bundled_raw.head(1999).to_csv(source, index=False)
    lineage.observe()
    assert lineage.stale() == (StaleStatus.STALE, [(CENSUS_SOURCE, "has a new dependency data version")])
    tick = dg.evaluate_automation_conditions(defs=follows, instance=lineage.instance, cursor=tick.cursor)
    assert tick.get_num_requested(RAW_CENSUS) == 1

    lineage.run("raw_census")  # materialised again from the new version: fresh
    assert lineage.stale() == (StaleStatus.FRESH, [])


def test_source_sensor_records_the_observation_before_its_run_and_none_for_a_touch(tmp_path, source, bundled_raw):
    lineage = Lineage(tmp_path, source)
    resources = {"source": CensusSource(uri=str(source))}

    def tick(cursor):
        context = dg.build_sensor_context(cursor=cursor, instance=lineage.instance, resources=resources)
        return census_source_changed.evaluate_tick(context)

    first = tick(None)
    [request] = first.run_requests
    [event] = first.asset_events
    fingerprint = CensusSource(uri=str(source)).fingerprint()
    assert event.asset_key == CENSUS_SOURCE and event.tags[DATA_VERSION_TAG] == fingerprint == first.cursor
    assert request.run_key == fingerprint
    lineage.instance.report_runless_asset_event(event)  # what the sensor daemon does with it
    assert lineage.observation()[0] == fingerprint

    os.utime(source)
    touched = tick(first.cursor)
    assert touched.run_requests == [] and touched.asset_events == [] and "unchanged" in touched.skip_message

    lineage.run("raw_census")
    bundled_raw.head(1500).to_csv(source, index=False)
    changed = tick(first.cursor)
    assert len(changed.run_requests) == 1 and changed.asset_events[0].tags[DATA_VERSION_TAG] == changed.cursor
    lineage.instance.report_runless_asset_event(changed.asset_events[0])
    assert lineage.stale()[0] == StaleStatus.STALE  # until the requested run materialises it


def test_a_missing_source_fails_the_observation_with_its_name(tmp_path):
    lineage = Lineage(tmp_path, tmp_path / "gone.csv")
    result = run_graph(lineage.env, selection=["census_source"], instance=lineage.instance)
    assert not result.success
    message = step_failure_message(result, "census_source")
    assert "cannot observe" in message and "source file not found" in message and "gone.csv" in message
