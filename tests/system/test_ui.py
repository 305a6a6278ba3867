"""The Airflow UI in a real browser: Playwright for Python drives Debian's Chromium (``/usr/bin/chromium``,
installed by ``scripts/ensure_chromium.sh``; Playwright never downloads a browser here).

A person signs in, opens ``mlops_lifecycle``, opens the trigger form, changes ``model_name`` and
``min_improvement``, triggers, and watches the run reach success. Screenshots of the filled trigger form
and of the finished run's graph are saved in the test's tmp dir; with ``MLOPS_UPDATE_SCREENSHOTS=1`` they
are also copied to ``docs/images/`` for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import REPO_ROOT, service_missing

from .api import RunDidNotFinish
from .stack import ADMIN

pytestmark = pytest.mark.system

CHROMIUM = Path(os.environ.get("MLOPS_CHROMIUM", "/usr/bin/chromium"))
DAG_ID = "mlops_lifecycle"
VIEWPORT = {"width": 1280, "height": 760}
DOC_IMAGES = {"trigger_form.png": "ui-trigger-form.png", "run_graph.png": "ui-lifecycle-run-graph.png"}


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

    if os.environ.get("MLOPS_UPDATE_SCREENSHOTS") == "1":
        target = REPO_ROOT / "docs" / "images"
        target.mkdir(parents=True, exist_ok=True)
        for source, name in DOC_IMAGES.items():
            shutil.copyfile(tmp_path / source, target / name)
