"""The Airflow UI in a real browser: Playwright for Python drives Debian's Chromium (``/usr/bin/chromium``,
installed by ``scripts/ensure_chromium.sh``; Playwright never downloads a browser here).

A person signs in, opens ``mlops_lifecycle``, opens the trigger form, changes ``model_name`` and
``min_improvement``, triggers, and watches the run reach success. Then opens Browse > Model fleet (the provider's
UI plugin) and reads every catalogued model's champion, last run and flags, a promotion waiting for a human
among them. Screenshots of the filled trigger form, the finished run's graph and the fleet page are saved in the
test's tmp dir; with ``MLOPS_UPDATE_SCREENSHOTS=1`` they are also copied to ``docs/images/`` for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import yaml

from conftest import REPO_ROOT, service_missing

from .api import RunDidNotFinish
from .stack import ADMIN

pytestmark = pytest.mark.system

CHROMIUM = Path(os.environ.get("MLOPS_CHROMIUM", "/usr/bin/chromium"))
DAG_ID = "mlops_lifecycle"
VIEWPORT = {"width": 1280, "height": 760}
DOC_IMAGES = {"trigger_form.png": "ui-trigger-form.png", "run_graph.png": "ui-lifecycle-run-graph.png",
              "fleet_page.png": "ui-fleet-page.png"}  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        service_missing("Chromium", f"{CHROMIUM} is missing; run scripts/ensure_chromium.sh (Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, stack):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=2, base_url=stack.api_url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def sign_in(page) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(ADMIN["username"])
    page.get_by_label("Password").fill(ADMIN["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"))


def wait_for_run_state_in_ui(page, stack, run_id: str, state: str, timeout: float) -> None:
    """Watch the run page's header badge until it shows ``state`` (the page refreshes itself while the run
    is active; a reload every 30 s guards against a missed refresh). On failure, the task logs from the API."""
    from playwright.sync_api import expect

    header = page.get_by_role("heading", name=run_id, exact=True).locator("xpath=..")
    deadline = time.monotonic() + timeout
    while True:
        try:
            expect(header).to_contain_text(re.compile(rf"\b{state}\b", re.I), timeout=30_000)
            return
        except AssertionError:
            shown = header.inner_text().replace("\n", " ")
            if re.search(rf"\b{state}\b", shown, re.I):  # it changed just after the last check
                return
            if re.search(r"\bFailed\b", shown) or time.monotonic() > deadline:
                raise RunDidNotFinish(
                    f"The UI shows run {run_id} as {shown!r}, expected {state!r}.\n"
                    + stack.api.failure_report(DAG_ID, run_id)
                ) from None
            page.reload()


def test_trigger_lifecycle_from_the_ui_with_changed_params(page, stack, tmp_path):
    stack.api.wait_for_dag(DAG_ID, timeout=180)  # paused or not: the form's "Unpause on trigger" handles both
    model = f"churn_ui_{uuid.uuid4().hex[:6]}"
    sign_in(page)

    page.goto(f"/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    form.get_by_text("Run Parameters").wait_for()
    # The form is built from the DAG's params: defaults are filled in, descriptions shown.
    model_field = form.locator("#element_model_name")
    assert model_field.input_value() == stack.model_name
    improvement = form.locator("input[name='element_min_improvement']")
    model_field.fill(model)
    improvement.fill("0.02")
    improvement.blur()
    unpause = form.get_by_label(f"Unpause {DAG_ID} on trigger")
    if unpause.count() and not unpause.is_checked():
        unpause.check()
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1250})  # the changed fields in one picture
    form.get_by_text("timestamp_column", exact=True).scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # let the form settle before the picture
    page.screenshot(path=str(tmp_path / "trigger_form.png"))
    page.set_viewport_size(VIEWPORT)

    form.get_by_role("button", name="Trigger", exact=True).click()
    page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/runs/"))
    run_id = unquote(page.url.rsplit("/runs/", 1)[1].split("?")[0])
    page.get_by_text("Dag Run Triggered").first.wait_for()

    # The UI sent the changed values as the run's conf.
    run = stack.api.run(DAG_ID, run_id)
    assert run["conf"]["model_name"] == model
    assert run["conf"]["min_improvement"] == pytest.approx(0.02)
    assert run["triggering_user_name"] == ADMIN["username"]

    started = time.monotonic()
    wait_for_run_state_in_ui(page, stack, run_id, "Success", timeout=480)
    print(f"\nUI-triggered {DAG_ID}: success shown after {time.monotonic() - started:.0f}s")

    page.get_by_role("button", name="Show Graph (Press g)").click()
    page.get_by_role("button", name="Expand all task groups").click()
    details = page.get_by_role("button", name="Collapse Details Panel")
    if details.count():
        details.click()
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 600})  # the graph is one wide row
    page.get_by_role("button", name="Fit View").click()
    for task in ("validate", "train", "gate", "promote", "score"):
        page.locator(".react-flow").get_by_text(task, exact=True).first.wait_for()
    page.wait_for_timeout(800)
    page.screenshot(path=str(tmp_path / "run_graph.png"))

    trained = stack.api.xcom(DAG_ID, run_id, "lifecycle.train")
    champion = stack.mlflow().get_model_version_by_alias(model, "champion")
    assert champion.version == str(trained["version"]) and champion.tags["airflow.run_id"] == run_id

    update_doc_images(tmp_path, "trigger_form.png", "run_graph.png")


def update_doc_images(folder: Path, *names: str) -> None:
    if os.environ.get("MLOPS_UPDATE_SCREENSHOTS") == "1":
        target = REPO_ROOT / "docs" / "images"
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(folder / name, target / DOC_IMAGES[name])


def test_fleet_page_shows_every_catalogued_model_its_champion_runs_and_a_waiting_approval(page, stack, tmp_path):
    """Browse > Model fleet in the real browser, after the fleet tests left eight champions; one more model asks a
    human before promoting, and its waiting request shows on the page with a link to answer it."""
    import httpx
    from playwright.sync_api import expect

    from .test_fleet_stack import _change_catalogue, _parsed_since, _poll, dag_id

    api = stack.api
    base = yaml.safe_load(stack.catalogue_path.read_text())["models"]
    asking = "churn_asks_first"
    api.set_pool("mlops_training", 2, "models training at once, fleet-wide")  # as the fleet tests left it
    requested = _change_catalogue(stack, {**base, asking: {**base["churn_logistic"], "require_approval": True}})
    _poll(lambda: _parsed_since(api, asking, requested), timeout=90, what=f"{dag_id(asking)} parsed")
    api.set_paused(dag_id(asking), False)
    run_id = api.trigger(dag_id(asking), note="system test: fleet page")["dag_run_id"]
    hitl = f"/api/v2/dags/{dag_id(asking)}/dagRuns/{run_id}/taskInstances/lifecycle.approve/-1/hitlDetails"
    try:
        api.wait_for_task(dag_id(asking), run_id, "lifecycle.approve", {"awaiting_input"}, timeout=420)
        champions = {name: _champion_version(stack, name) for name in base}
        assert all(champions.values()), champions  # the fleet tests left a champion per model

        sign_in(page)
        page.get_by_role("button", name="Browse").click()
        page.get_by_role("menuitem", name="Model fleet").click()
        page.wait_for_url(re.compile(r"/plugin/mlops-fleet$"))
        fleet = page.frame_locator("iframe")  # the UI embeds the plugin's page
        heading = fleet.locator("h1")  # the first view reads the registry and imports MLflow in the API server
        heading.wait_for(timeout=90_000)
        error = fleet.locator("#error")
        assert not error.count(), error.inner_text()
        rows = fleet.locator("tbody tr")
        expect(rows).to_have_count(len(base) + 1, timeout=30_000)
        for name, version in champions.items():
            row = fleet.locator(f"tr#model-{name}")
            expect(row.locator("td").nth(2)).to_contain_text(f"v{version}")  # the registry's champion
            (last,) = api.runs(dag_id(name), order_by="-run_after", limit=1)
            expect(row.locator("td").nth(6)).to_contain_text(f"{dag_id(name)}: {last['state']}")  # its last run
        waiting = fleet.locator(f"tr#model-{asking}")
        expect(waiting.locator(".flag.approval_pending")).to_be_visible()
        expect(waiting.locator(".flag.no_champion")).to_be_visible()  # trained and registered, not promoted yet
        answer = waiting.get_by_role("link", name=re.compile(rf"Promote {asking} version 1 to @champion\?"))
        assert answer.get_attribute("href") == (
            f"/dags/{dag_id(asking)}/runs/{quote(run_id, safe='')}/tasks/lifecycle.approve/required_actions"
        )
        page.set_viewport_size({"width": 1600, "height": 900})
        page.wait_for_timeout(500)
        page.screenshot(path=str(tmp_path / "fleet_page.png"))

        # The same report as JSON for a script; without a signed-in user, nothing.
        url = f"{stack.api_url}/mlops-fleet/report.json"
        assert httpx.get(url).status_code == 401
        report = httpx.get(url, headers={"Authorization": f"Bearer {api.token()}"}, timeout=60).json()
        assert report["counts"]["approval_pending"] == 1 and report["counts"]["with_champion"] == len(base)
        assert {m["name"]: m["champion_version"] for m in report["models"] if m["name"] in base} == champions

        # And as Prometheus metrics, scraped and parsed as Prometheus would.
        from prometheus_client.parser import text_string_to_metric_families

        url = f"{stack.api_url}/mlops-fleet/metrics"
        assert httpx.get(url).status_code == 401
        scraped = httpx.get(url, headers={"Authorization": f"Bearer {api.token()}"}, timeout=60)
        assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(scraped.text)
            for sample in family.samples
        }
        for name, version in champions.items():
            assert samples[("mlops_model_champion_version", (("model", name),))] == float(version)
        assert samples[("mlops_model_pending_approvals", (("model", asking),))] == 1.0
        assert samples[("mlops_model_flag", (("flag", "approval_pending"), ("model", asking)))] == 1.0
        assert samples[("mlops_fleet_models", ())] == len(base) + 1

        # A model's DAG link leads out of the frame to its page in Airflow.
        fleet.locator("tr#model-churn_gbm").get_by_role("link", name=dag_id("churn_gbm"), exact=True).click()
        page.wait_for_url(re.compile(rf"/dags/{dag_id('churn_gbm')}$"))
    finally:
        if api.task_instance(dag_id(asking), run_id, "lifecycle.approve")["state"] == "awaiting_input":
            api.request("PATCH", hitl, json={"chosen_options": ["Reject"], "params_input": {}})
        api.wait_for_run(dag_id(asking), run_id, timeout=180)
        api.set_paused(dag_id(asking), True)
        _change_catalogue(stack, base)
    update_doc_images(tmp_path, "fleet_page.png")


def _champion_version(stack, model: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(stack.mlflow().get_model_version_by_alias(model, "champion").version)
    except MlflowException:
        return None
