"""The Dagster UI as an operator uses it: a real dagster-webserver, driven by GraphQL and by Chromium.

The pass-path browser test has a webserver of its own on a fresh instance, so it sees every census
asset "Never materialized" whatever ran before; the others share the session's webserver and assert
only on the runs they launch or on the module's one run of the whole graph (whole_graph_run), found
by run id, so each passes alone and in any order.
Screenshots: test-artifacts/ui/<test>/ (CENSUS_UI_ARTIFACTS).
"""

import json
import re

import lightgbm as lgb
import pytest
from playwright.sync_api import expect

from census_assets_tests.harness.graphql import LOCATION, RUN_TIMEOUT_S, float_metadata

pytestmark = pytest.mark.browser

CENSUS_ASSETS = ["raw_census", "clean_census", "features", "cv_accuracy", "lgbm_model"]
GATE = "cv_accuracy_meets_threshold"
GROUP_PAGE = f"/locations/{LOCATION}/asset-groups/census"
RUN_TIMEOUT_MS = RUN_TIMEOUT_S * 1000
REFERENCE_ACCURACY = 0.830  # issue 2: the bundled data gives 0.830 +- 0.005


@pytest.fixture(scope="module")
def whole_graph_run(dagster_ui) -> str:
    """One census_pipeline run on the session's webserver (training, held-out metrics, promotion),
    shared by the tests that need a trained model or its evaluation: the graph is trained once."""
    server = dagster_ui.server
    run_id = server.launch_job("census_pipeline")
    assert server.wait_for_run(run_id)["status"] == "SUCCESS", server.log_tails()
    return run_id


def asset_node(page, name: str):
    """An asset's box in the lineage graph (Dagster's AssetNode component)."""
    return page.locator("[class*=AssetNode_assetNodeBox]").filter(has=page.get_by_text(name, exact=True))


def run_link(scope, run_id: str):
    return scope.locator(f'a[href^="/runs/{run_id}"]')


def launched_run_id(response) -> str:
    """The run id from the UI's own LaunchPipelineExecution response."""
    result = response.json()["data"]["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["id"]


def is_launch(response) -> bool:
    return "op=LaunchPipelineExecution" in response.url


def test_browser_materialize_all_passes_the_gate_and_shows_the_model(fresh_dagster_ui, ui):
    dagster_ui = fresh_dagster_ui
    server, page = dagster_ui.server, ui.page
    page.goto(server.url + GROUP_PAGE)
    for name in CENSUS_ASSETS:
        expect(asset_node(page, name)).to_contain_text("Never materialized")
    ui.shot("graph-never-materialized")

    with page.expect_response(is_launch) as launch:
        page.get_by_role("button", name=re.compile(r"Materialize all( \(\d+\))?$")).click()
    run_id = launched_run_id(launch.value)
    toast = page.locator("[data-sonner-toast]").filter(has_text=f"Launched run {run_id[:8]}")
    expect(toast).to_be_visible()
    ui.shot("launched")
    toast.get_by_role("link", name="View").click()
    page.wait_for_url(re.compile(f"/runs/{run_id}"))
    expect(page.get_by_text("Success", exact=True)).to_be_visible(timeout=RUN_TIMEOUT_MS)
    ui.shot("run-success")

    page.goto(server.url + GROUP_PAGE)
    for name in CENSUS_ASSETS:
        node = asset_node(page, name)
        expect(node).to_contain_text("Materialized")
        expect(node).not_to_contain_text("Never materialized")
        expect(run_link(node, run_id).first).to_be_visible()  # "Latest event" is this run's
    ui.shot("graph-materialized")

    page.goto(server.url + "/assets/cv_accuracy?view=checks")
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"CV accuracy 0\.83\d\d passes the threshold 0\.8000"))).to_be_visible()
    expect(run_link(page, run_id).first).to_be_visible()  # the latest execution is this run's
    ui.shot("gate-passed")

    page.goto(server.url + "/assets/lgbm_model")
    for key in ("feature_importance_top20", "feature_importance_chart", "path", "size_bytes", "trees"):
        expect(page.get_by_text(key, exact=True)).to_be_visible()
    expect(page.get_by_text(str(dagster_ui.storage / "lgbm_model.txt"), exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="age_bins", exact=True)).to_be_visible()  # top feature by gain
    ui.shot("model-metadata")
    page.get_by_text("[Show Markdown]").last.click()
    chart = page.get_by_role("dialog").get_by_role("img", name="feature importance, top 20 by gain")
    expect(chart).to_be_visible()
    assert chart.evaluate("image => image.complete && image.naturalWidth") > 100
    ui.shot("model-importance-chart")

    run = server.run(run_id)
    assert run["status"] == "SUCCESS"
    assert (dagster_ui.storage / "lgbm_model.importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_browser_gate_at_0_99_fails_the_run_and_keeps_the_model(dagster_ui, whole_graph_run, ui):
    server, page = dagster_ui.server, ui.page
    model = dagster_ui.storage / "lgbm_model.txt"  # whole_graph_run's: "the model is kept" compares real bytes
    model_before = model.read_bytes()
    assert lgb.Booster(model_str=model_before.decode()).num_trees() > 0  # a whole model, kept or not
    page.goto(server.url + GROUP_PAGE)
    expect(asset_node(page, "lgbm_model")).to_be_visible()

    materialize_all = page.get_by_role("button", name=re.compile(r"Materialize all( \(\d+\))?$"))
    materialize_all.locator("xpath=ancestor::span[1]/following-sibling::span[1]//button").click()
    page.get_by_role("menuitem", name="Open launchpad").click()
    launchpad = page.get_by_role("dialog")
    editor = launchpad.locator(".CodeMirror")
    expect(editor).to_contain_text("accuracy_threshold: 0.8")
    # Edited through CodeMirror's API, whose value the launchpad submits: a click and Home/Shift+End
    # were flaky when the field's hover description popped up under the pointer.
    editor.evaluate(
        "element => element.CodeMirror.setValue("
        "element.CodeMirror.getValue().replace('accuracy_threshold: 0.8', 'accuracy_threshold: 0.99'))"
    )
    expect(editor).to_contain_text("accuracy_threshold: 0.99")
    ui.shot("launchpad-threshold-0.99")

    with page.expect_response(is_launch) as launch:
        launchpad.get_by_role("button", name=re.compile(r"Materialize$")).click()
    run_id = launched_run_id(launch.value)
    execution = launch.value.request.post_data_json["variables"]["executionParams"]
    assert "accuracy_threshold: 0.99" in execution["runConfigData"]
    page.wait_for_url(re.compile(f"/runs/{run_id}"))
    expect(page.get_by_text("Failure", exact=True)).to_be_visible(timeout=RUN_TIMEOUT_MS)
    ui.shot("run-failure")

    page.goto(server.url + "/assets/cv_accuracy?view=checks")
    expect(run_link(page, run_id).first).to_be_visible()  # the latest execution is this run's
    expect(page.get_by_text("Failed", exact=True).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"CV accuracy 0\.83\d\d is below the threshold 0\.9900"))).to_be_visible()
    ui.shot("gate-failed")

    # cv_accuracy was materialised by this run, lgbm_model was not.
    page.goto(server.url + "/assets/cv_accuracy?view=events")
    expect(run_link(page, run_id).first).to_be_visible()
    page.goto(server.url + "/assets/lgbm_model?view=events")
    short_id = run_id[:8]
    banner = re.compile(rf"Run {short_id}\s*failed, and did not materialize this asset")
    expect(page.get_by_text(banner)).to_be_visible()
    # The banner means the page has loaded: no materialisation event of this run is listed.
    expect(page.get_by_text(re.compile(rf"Materialized in run\s*{short_id}"))).to_have_count(0)
    ui.shot("model-not-materialized")

    run = server.run(run_id)
    assert run["status"] == "FAILURE"
    assert ["lgbm_model"] not in [m["assetKey"]["path"] for m in run["assetMaterializations"]]
    assert model.read_bytes() == model_before  # the previous model is untouched


def test_graphql_launch_poll_and_read_the_gate(dagster_ui, whole_graph_run):
    server, run_id = dagster_ui.server, whole_graph_run  # launched and polled to SUCCESS by GraphQL
    run = server.run(run_id)
    materialized = {m["assetKey"]["path"][-1] for m in run["assetMaterializations"]}
    assert set(CENSUS_ASSETS) <= materialized

    [execution] = [e for e in server.check_executions("cv_accuracy", GATE) if e["runId"] == run_id]
    assert execution["status"] == "SUCCEEDED" and execution["evaluation"]["success"]
    values = float_metadata(execution["evaluation"]["metadataEntries"])
    assert values["threshold"] == pytest.approx(0.8)
    assert values["accuracy"] == pytest.approx(REFERENCE_ACCURACY, abs=0.005)


def show_markdown(page, key: str):
    """Opens a Markdown metadata entry of the selected event (its "[Show Markdown]"): the dialog."""
    row = page.get_by_role("row").filter(has=page.get_by_text(key, exact=True))
    row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(key)  # the dialog's title is the entry's key
    return dialog


def close(page, dialog) -> None:
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def expect_images_decoded(scope, names) -> None:
    """Each named <img> is visible and holds a PNG that decoded (not a broken link)."""
    for name in names:
        image = scope.get_by_role("img", name=name)
        expect(image).to_be_visible()
        assert image.evaluate("image => image.complete && image.naturalWidth") > 100, name


def open_latest_event(page, server, asset: str, run_id: str) -> None:
    page.goto(server.url + f"/assets/{asset}?view=events")
    # The latest materialisation is selected: whole_graph_run's (the gate test's run stops before it).
    expect(page.get_by_text(re.compile(rf"Materialized in run\s*{run_id[:8]}"))).to_be_visible()


@pytest.mark.audit
def test_browser_shows_the_model_card_and_the_reliability_diagrams(dagster_ui, whole_graph_run, ui):
    server, page = dagster_ui.server, ui.page
    version = json.loads((dagster_ui.storage / "holdout_metrics.json").read_text())["model_version"]
    title = f"Model card: census never-married classifier, version {version}"
    card_diagrams = ["reliability diagram, sex", "reliability diagram, race"]
    open_latest_event(page, server, "holdout_metrics", whole_graph_run)
    ui.shot("holdout-metrics-event")

    card = show_markdown(page, "model_card")
    expect(card.get_by_role("heading", name=title, exact=True)).to_be_visible()
    for section in ("Evaluation", "Per group", "Calibration", "Intended use"):
        expect(card.get_by_role("heading", name=section, exact=True)).to_be_visible()
    expect(card.get_by_role("cell", name="sex=Female", exact=True).first).to_be_visible()  # a table, rendered
    expect_images_decoded(card, card_diagrams)  # the diagrams the card names, inside the card
    ui.shot("model-card")
    close(page, card)

    for column in ("sex", "race"):
        diagram = show_markdown(page, f"reliability_diagram {column}")
        expect_images_decoded(diagram, [f"reliability_{column}.png"])
        ui.shot(f"reliability-diagram-{column}")
        close(page, diagram)

    # production_model shows the card it published with the version, promotion evidence included.
    open_latest_event(page, server, "production_model", whole_graph_run)
    card = show_markdown(page, "model_card")
    expect(card.get_by_role("heading", name=title, exact=True)).to_be_visible()
    expect(card.get_by_role("heading", name="Promotion evidence", exact=True)).to_be_visible()
    expect_images_decoded(card, card_diagrams)
    ui.shot("production-model-card")
    close(page, card)


def test_browser_lists_the_job_schedule_sensors_and_blocking_check(dagster_ui, ui):
    server, page = dagster_ui.server, ui.page
    page.goto(server.url + "/automation")
    for name in ("weekly_retrain", "census_source_changed", "census_automation", "census_run_failure_alert"):
        expect(page.get_by_text(name, exact=True)).to_be_visible()
    expect(page.get_by_text("At 03:00 AM UTC, only on Monday")).to_be_visible()
    ui.shot("automation")
    page.goto(server.url + "/jobs")
    expect(page.get_by_text("census_pipeline", exact=True)).to_be_visible()
    ui.shot("jobs")
    page.goto(server.url + "/assets/lgbm_model")
    expect(page.get_by_text("ml-platform", exact=True)).to_be_visible()
    expect(page.get_by_text("lightgbm", exact=True).first).to_be_visible()
    ui.shot("model-definition")
    page.goto(server.url + "/assets/cv_accuracy?view=checks")
    expect(page.get_by_text(GATE, exact=True).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^This is a\s*blocking\s*asset check"))).to_be_visible()
    ui.shot("blocking-check")
