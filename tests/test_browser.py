"""The path a person takes, in real headless Chromium driven by Playwright: pick a version, predict, upload,
download. A screenshot is kept in artifacts/ (git-ignored)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

from tests.support import dashboard_server
from tests.support.browser import chromium_or_skip, settled
from tests.support.helpers import CHROMIUM, CHROMIUM_FLAGS, DEMO, REPO, demo_store
from tests.support.secretscan import SCANNED

FLAGS = CHROMIUM_FLAGS
ARTIFACTS = REPO / "artifacts"


@contextlib.contextmanager
def opened(base: str):
    """Chromium on the dashboard at base, once the sidebar shows the default version's card."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(base)
            expect(page.get_by_test_id("stSidebar").get_by_text("Version 1.1.0")).to_be_visible(timeout=90_000)
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> None:
    """The whole page in artifacts/ (git-ignored), once the results grid has painted."""
    page.wait_for_timeout(1500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def download_results(page, saved: Path) -> Path:
    """Press Download results and keep what the browser receives."""
    with page.expect_download() as pending:
        page.get_by_role("button", name="Download results").click()
    pending.value.save_as(saved)
    return saved


@pytest.fixture
def server(tmp_path):
    """`streamlit run dashboard/app.py` on a free port: launch(extra_env, lean=False) -> base URL."""
    started = []

    def launch(extra_env: dict[str, str], lean: bool = False) -> str:
        running = dashboard_server.start(tmp_path, extra_env, lean)
        started.append(running)
        launch.pids.append(running.process.pid)
        return running.base

    launch.pids = []
    yield launch
    for running in started:
        SCANNED.append(("server log", running.stop()))


@pytest.mark.parametrize("source", ["demo", "http", "lean"])
def test_a_person_picks_a_version_predicts_uploads_and_downloads(server, store, tmp_path, source):
    chromium_or_skip()
    from playwright.sync_api import expect

    base = server({"MODEL_MANIFEST_URL": demo_store(store)} if source == "http" else {}, lean=source == "lean")
    with opened(base) as page:
        sidebar = page.get_by_test_id("stSidebar")

        sidebar.get_by_role("combobox").click()
        page.get_by_role("option", name="1.0.0").click()
        expect(sidebar.get_by_text("Version 1.0.0")).to_be_visible(timeout=60_000)
        assert "version=1.0.0" in page.url
        runtime = "litert" if source == "lean" else "keras"
        expect(sidebar.get_by_text(f"runtime {runtime}")).to_be_visible()

        page.get_by_role("spinbutton", name="petal_length (cm)").fill("1.4")
        page.get_by_role("spinbutton", name="petal_width (cm)").fill("0.2")
        page.get_by_role("button", name="Predict").click()
        expect(page.get_by_test_id("stMetricValue").first).to_have_text("setosa", timeout=30_000)

        batch_tab = page.get_by_role("tab", name="Batch", exact=True)
        expect(batch_tab).to_have_count(1, timeout=30_000)  # stale elements of the previous run are gone
        batch_tab.click()
        settled(page)
        page.locator("input[type=file]").set_input_files(str(DEMO / "sample.csv"))
        expect(page.get_by_text("Rows ready")).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=30_000)
        if source == "demo":
            screenshot(page, "dashboard-batch.png")
        saved = download_results(page, tmp_path / "results.csv")
    if source == "lean":
        maps = Path(f"/proc/{server.pids[-1]}/maps").read_text()
        assert "libtensorflow" not in maps, "the lean server loaded TensorFlow"
    results = pd.read_csv(saved, keep_default_na=False)
    assert len(results) == 30
    assert set(results["model_version"].astype(str)) == {"1.0.0"}
    assert (results["prediction"] == results["species"]).mean() >= 0.9
    assert (results["error"] == "").all()


EVIL = "http://127.0.0.9"  # nothing listens there; the page must neither link to it nor fetch from it


def test_text_from_manifests_links_and_uploads_renders_as_text_in_the_browser(server, tmp_path, copy_demo):
    """Markdown injection (issue 12): a crafted manifest, shared link and CSV make no link and no image."""
    chromium_or_skip()
    import json

    from playwright.sync_api import expect, sync_playwright

    manifest = json.loads((copy_demo / "manifest.json").read_text())
    manifest["name"] = f"Iris [Sign in again]({EVIL}/login)"
    for entry in manifest["versions"]:
        entry["notes"] = f"![pixel]({EVIL}/pixel.png) see <{EVIL}/auto> or {EVIL}/bare and www.evil.example"
        entry["created"] = f"[today]({EVIL}/created)"
    (copy_demo / "manifest.json").write_text(json.dumps(manifest))
    upload = tmp_path / "evil.csv"
    upload.write_text(
        f"sepal_length,sepal_width,petal_length,petal_width,[col]({EVIL}/col)\n"
        f"[click]({EVIL}/cell),3.5,1.4,0.2,x\n5.1,3.5,1.4,0.2,y\n"
    )
    base = server({"MODEL_MANIFEST_URL": str(copy_demo / "manifest.json")})
    fetched = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda request: fetched.append(request.url))
            page.goto(f"{base}/?version=[x]({EVIL}/version)")
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text("Version 1.1.0")).to_be_visible(timeout=90_000)
            expect(sidebar.get_by_text(f"Iris [Sign in again]({EVIL}/login)")).to_be_visible()
            expect(sidebar.get_by_text(f"![pixel]({EVIL}/pixel.png)", exact=False)).to_be_visible()
            page.get_by_role("tab", name="Batch", exact=True).click()
            settled(page)
            page.locator("input[type=file]").set_input_files(str(upload))
            expect(page.get_by_text("Rows ready")).to_be_visible(timeout=60_000)
            expect(page.get_by_text(f"'[click]({EVIL}/cell)' is not a number", exact=False).first).to_be_visible()
            html = page.content()
        finally:
            browser.close()
    assert f'href="{EVIL}' not in html and f'src="{EVIL}' not in html and 'href="http://www.evil' not in html
    assert not [url for url in fetched if url.startswith(EVIL)]
    assert "<a " not in html.split('data-testid="stSidebar"', 1)[1].split("</section>", 1)[0]


def test_why_what_if_and_drift_in_the_browser_match_the_api(server, tmp_path):
    """Issue 16 through the path a person takes: the chart and the sentence appear, and the sentence's number is
    the API's attribution for the same row."""
    chromium_or_skip()
    from playwright.sync_api import expect

    base = server({})
    row = {"sepal_length": 5.8, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}
    for _ in range(120):
        ready = requests.get(base + "/api/v1/ready", timeout=10)
        if ready.headers.get("content-type", "").startswith("application/json") and ready.status_code == 200:
            break
        time.sleep(0.5)
    api = requests.post(base + "/api/v1/predict?explain=true", json={"instances": [row]}, timeout=60).json()
    attributions = api["predictions"][0]["attributions"]
    top = max(attributions, key=lambda k: abs(attributions[k]))
    with opened(base) as page:
        page.get_by_role("spinbutton", name="petal_length (cm)").fill("5.2")
        page.get_by_role("spinbutton", name="petal_width (cm)").fill("2.3")
        page.get_by_role("button", name="Predict", exact=True).click()
        expect(page.get_by_text("Why this prediction")).to_be_visible(timeout=60_000)
        sentence = page.get_by_text(f"{top} ", exact=False).filter(has_text="virginica by").first
        expect(sentence).to_be_visible()
        assert f"by {abs(attributions[top]):.2f}" in sentence.inner_text()
        expect(page.get_by_text("Contribution of each input to virginica")).to_be_visible()
        expect(page.get_by_text("The model's answer as sepal_length changes")).to_be_visible()
        page.get_by_role("tab", name="Batch", exact=True).click()
        settled(page)
        page.locator("input[type=file]").set_input_files(str(DEMO / "sample.csv"))
        expect(page.get_by_text("Like the training data?")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Population stability index (PSI) of each input", exact=False)).to_be_visible()


def test_a_person_flags_a_wrong_answer_and_exports_it_for_training(server, tmp_path):
    """Issue 17 in the browser, with no configuration: predict, report the right label, see the report in the
    Feedback tab, download it as training data."""
    chromium_or_skip()
    from playwright.sync_api import expect

    base = server({})
    with opened(base) as page:
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("History is kept in a local SQLite file")).to_be_visible()
        page.get_by_role("spinbutton", name="petal_length (cm)").fill("1.4")
        page.get_by_role("spinbutton", name="petal_width (cm)").fill("0.2")
        page.get_by_role("button", name="Predict").click()
        expect(page.get_by_test_id("stMetricValue").first).to_have_text("setosa", timeout=30_000)
        settled(page)

        page.get_by_text("Report a wrong answer").click()
        choice = page.get_by_role("combobox", name="The right answer")
        choice.scroll_into_view_if_needed()
        choice.click()
        choice.press_sequentially("versicolor")
        expect(page.get_by_role("option")).to_have_count(1)  # filtered to the one label typed
        choice.press("Enter")
        page.get_by_label("Comment (optional)").fill("petals measured twice")
        page.get_by_role("button", name="Send report").click()
        expect(page.get_by_text("Thanks: reported as versicolor.")).to_be_visible(timeout=30_000)

        page.get_by_role("tab", name="Feedback").click()
        settled(page)
        expect(page.get_by_text("How often each version was flagged")).to_be_visible(timeout=30_000)
        expect(page.get_by_text("Reports (1)")).to_be_visible(timeout=30_000)
        with page.expect_download() as pending:
            page.get_by_role("button", name="Download as training data (CSV)").click()
        saved = tmp_path / "training.csv"
        pending.value.save_as(saved)

        page.get_by_role("tab", name="History").click()
        expect(page.get_by_text("1 prediction(s), newest first")).to_be_visible(timeout=30_000)
    training = pd.read_csv(saved)
    assert training.to_dict(orient="records") == [
        {"sepal_length": 5.8, "sepal_width": 3.0, "petal_length": 1.4, "petal_width": 0.2, "label": "versicolor"}
    ]


def test_on_a_phone_every_tab_fits_and_answers_lead_the_table(server):
    """Issue 22: at 390 px the six tabs fit without the tab row's scroll arrow; the results table starts with the
    prediction (and error), not the inputs."""
    chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    base = server({})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            page.goto(base)
            expect(page.get_by_role("button", name="Predict", exact=True)).to_be_visible(timeout=90_000)
            for name in ("Predict", "Batch", "Compare", "History", "Feedback", "Monitor"):
                tab = page.get_by_role("tab", name=name, exact=True)
                box = tab.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (name, box)
            page.get_by_role("tab", name="Batch", exact=True).click()
            settled(page)
            page.locator("input[type=file]").set_input_files(str(DEMO / "sample.csv"))
            expect(page.get_by_text("Rows ready")).to_be_visible(timeout=60_000)
            header = (
                page.get_by_test_id("stMain").get_by_test_id("stDataFrame").first.locator("[role=columnheader]").nth(0)
            )
            expect(header).to_contain_text("prediction", timeout=30_000)
        finally:
            browser.close()


@pytest.mark.parametrize("lean", [False, True], ids=["keras", "lean"])
def test_a_person_predicts_an_image_and_a_folder_of_them_in_the_browser(server, tmp_path, lean):
    """Issue 26, the image demo store in Chromium (and on the lean stack: Pillow and LiteRT, no TensorFlow): upload
    a digit, see the answer, the image and what mattered; upload several in Batch and download the results, the
    file's name first."""
    chromium_or_skip()
    from playwright.sync_api import expect

    digits = DEMO / "digits"
    base = server({"MODEL_MANIFEST_URL": str(digits / "manifest.json")}, lean=lean)
    with opened(base) as page:
        predict = page.get_by_role("tabpanel", name="Predict")
        predict.locator("input[type=file]").set_input_files(str(digits / "samples" / "digit-3.png"))
        page.wait_for_timeout(500)
        predict.get_by_role("button", name="Predict").click()
        expect(page.get_by_test_id("stMetricValue").first).to_have_text("3", timeout=60_000)
        expect(page.get_by_text("Why: each of 64 squares")).to_be_visible(timeout=30_000)
        expect(predict.get_by_test_id("stImage")).to_have_count(2, timeout=30_000)
        page.get_by_role("tab", name="Batch", exact=True).click()
        settled(page)
        batch = page.get_by_role("tabpanel", name="Batch")
        batch.locator("input[type=file]").set_input_files([str(p) for p in sorted((digits / "samples").iterdir())])
        expect(page.get_by_text("Rows ready")).to_be_visible(timeout=60_000)
        expect(batch.get_by_test_id("stDataFrame").first).to_be_visible(timeout=30_000)
        if not lean:
            screenshot(page, "dashboard-images.png")
        saved = download_results(page, tmp_path / "digits.csv")
    if lean:
        maps = Path(f"/proc/{server.pids[-1]}/maps").read_text()
        assert "libtensorflow" not in maps, "the lean server loaded TensorFlow"
    results = pd.read_csv(saved, keep_default_na=False)
    assert list(results.columns[:2]) == ["file", "prediction"]
    assert list(results["file"]) == [f"digit-{d}.png" for d in range(10)]
    assert (results["prediction"].astype(str) == [str(d) for d in range(10)]).mean() >= 0.8
    assert (results["error"] == "").all()


def test_a_person_picks_a_model_of_the_catalog_then_predicts_with_it(server, catalog_store):
    """The catalog's model picker in Chromium: house (a regression) after iris, its form and answer, the link."""
    chromium_or_skip()
    from playwright.sync_api import expect

    from tests.support.catalog import expected_prices

    base = server({"MODEL_CATALOG_URL": str(catalog_store["catalog"]), "HISTORY": "off"})
    with opened(base) as page:
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_role("combobox").first.click()
        page.get_by_role("option", name="house — House price from rooms and area").click()
        expect(sidebar.get_by_text("Version 2.0.0")).to_be_visible(timeout=60_000)
        expect(sidebar.get_by_text("regression: price (k€)")).to_be_visible()
        assert "model=house" in page.url and "version=2.0.0" in page.url
        page.get_by_role("spinbutton", name="rooms").fill("5")
        page.get_by_role("spinbutton", name="area (m2)").fill("140")
        page.get_by_role("button", name="Predict").click()
        price = f"{expected_prices(catalog_store, '2.0.0')[1]:.4g} k€"
        expect(page.get_by_test_id("stMetricValue").first).to_have_text(price, timeout=30_000)
        page.goto(base + "/?model=digits")
        expect(sidebar.get_by_text("Version 1.0.0")).to_be_visible(timeout=90_000)
        expect(sidebar.get_by_text("classification: 0, 1, 2")).to_be_visible()


def test_a_person_opens_the_monitor_tab_reads_its_charts_and_downloads_the_drift(server, seeded_history, tmp_path):
    """The Monitor tab in Chromium on a drifting week: headline figures, every chart drawn, a download."""
    chromium_or_skip()
    from playwright.sync_api import expect

    from tests.support.monitor import DAYS, SHIFTED, copy_history

    path = copy_history(seeded_history[0], tmp_path / "db")
    base = server({"DATABASE_URL": f"sqlite:///{path}"})
    with opened(base) as page:
        page.get_by_role("tab", name="Monitor").click()
        main = page.get_by_test_id("stMain")
        expect(main.get_by_text("Inputs against the training data")).to_be_visible(timeout=60_000)
        values = main.get_by_test_id("stMetricValue")
        expect(values.first).to_have_text(f"{DAYS * 41:,}")
        expect(values.nth(4)).to_have_text("1")  # features drifting
        charts = main.get_by_test_id("stVegaLiteChart")
        expect(charts).to_have_count(5, timeout=30_000)  # volume, latency, answers, drift, agreement
        for index in range(5):
            expect(charts.nth(index).locator("canvas, svg").first).to_be_visible(timeout=30_000)
        with page.expect_download() as pending:
            main.get_by_role("button", name="Download drift (CSV)").click()
        saved = tmp_path / "drift.csv"
        pending.value.save_as(saved)
        drift = pd.read_csv(saved)
        overall = drift[drift["time"] == "all"].set_index("feature")
        assert overall.loc[SHIFTED, "verdict"] == "major"
        assert (overall["verdict"] == "major").sum() == 1
        screenshot(page, "monitor.png")
