"""The dashboard in a real browser (Debian's chromium driven by Playwright) against `sagewatch demo`.

Every number the page shows is checked against the API call a user would make for it. Screenshots
of each page are written to build/screenshots/ (the test artifacts).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests import factories
from tests.inputs import capture_call
from tests.local_stack import SAGEWATCH, clean_env

from sagewatch.auth import Role

CHROMIUM = Path("/usr/bin/chromium")
DEMO_TIMELINE = ["--hours", "4", "--calls-per-hour", "40"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
# Chromium on a machine with no route out: no background calls home, no sandbox (root in CI).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`sagewatch demo --keep-running`: the demo's story, then its stack left up for the browser."""
    state_dir = tmp_path_factory.mktemp("dashboard")
    log_path = state_dir / "demo.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*SAGEWATCH, "demo", "--keep-running", "--state-dir", str(state_dir), *DEMO_TIMELINE],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(),
        )
        deadline = time.monotonic() + 300
        while "the stack keeps running" not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the demo did not come up:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield {**json.loads((state_dir / "local.json").read_text()), "log": log_path}
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def call(demo: dict[str, Any], method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    request = urllib.request.Request(
        demo["api_url"] + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token or demo['token']}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """A browser tab on the dashboard that records console errors and failed page scripts."""

    def __init__(self, browser: Any, demo: dict[str, Any]) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 800})
        self.url = demo["api_url"]
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def sign_in(self, token: str) -> None:
        self.page.goto(self.url + "/")
        self.page.fill("#token", token)
        self.page.click("button[type=submit]")

    def open(self, address: str) -> Any:
        """Go to a dashboard address (`#/...`) and wait until its page has drawn."""
        # a new address only changes the hash: the old page's mark must not pass for the new one's
        self.page.evaluate("document.querySelector('main')?.removeAttribute('data-ready')")
        self.page.goto(f"{self.url}/{address}")
        self.page.wait_for_selector("main[data-ready]", timeout=60_000)
        return self.page

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def page(browser: Any, demo: dict[str, Any]) -> Iterator[Page]:
    tab = Page(browser, demo)
    tab.sign_in(demo["token"])
    tab.page.wait_for_selector("main[data-ready]", timeout=60_000)
    yield tab
    assert tab.errors == [], "the page logged errors"
    tab.page.close()


def model_of(demo: dict[str, Any]) -> dict[str, Any]:
    """The demo's model (tests may register others)."""
    models = call(demo, "GET", "/api/v3/models?page_size=500")["data"]
    return next(m for m in models if m["partner_model_id"] == "breast-cancer-classifier")


def test_the_models_page_shows_one_card_per_model_with_the_apis_counts(page: Page, demo: dict) -> None:
    model = model_of(demo)
    tab = page.open("#/models")
    page.shot("models")
    cards = tab.locator(".card")
    assert cards.count() == call(demo, "GET", "/api/v3/models")["total_count"]
    card = tab.locator(f'.card[data-model-id="{model["id"]}"]')
    status = call(demo, "GET", f"/api/v3/models/{model['id']}/inferences/status")
    open_alerts = call(demo, "GET", f"/api/v3/alerts?model_id={model['id']}&status=new&page_size=500")["data"]
    critical = sum(a["severity"] == "critical" for a in open_alerts)
    assert card.locator(".labelled").inner_text() == f"{status['labelled_ratio'] * 100:.1f}%"
    assert (
        card.locator(".open-alerts").inner_text()
        == f"{critical} critical, {len(open_alerts) - critical} warning"
    )
    assert int(card.locator(".inferences-24h").inner_text().replace(",", "")) == status["total"]
    assert card.get_attribute("data-health") == ("red" if critical else "amber")


def test_a_chart_has_as_many_points_as_the_apis_series(page: Page, demo: dict) -> None:
    model = model_of(demo)
    metrics = call(demo, "GET", f"/api/v3/models/{model['id']}/metrics?page_size=500")["metrics"]
    count = next(m for m in metrics if m["name"] == "Inference Count")
    tab = page.open(f"#/model/{model['id']}?metrics={count['id']}")
    page.shot("model")
    chart = tab.locator('figure.chart[data-metric="Inference Count"]')
    # the page's own series request, read back from the browser's address and range
    end = tab.evaluate("Date.now()")
    start = end - 24 * 3600 * 1000
    rows = count_series(demo, model["id"], "hour", start, end)
    assert chart.locator("circle.point").count() == len(rows) > 0
    shown = sorted(
        int(t.split(" ")[0].replace(",", ""))
        for t in chart.locator("circle.point title").evaluate_all("ts => ts.map(t => t.textContent)")
    )
    assert shown == sorted(r["count"] for r in rows)


def test_the_drift_table_is_in_the_apis_order_and_an_attribute_opens_its_distribution(
    page: Page, demo: dict
) -> None:
    model = model_of(demo)
    tab = page.open(f"#/model/{model['id']}")
    inputs = [a["name"] for a in model["attributes"] if a["stage"] == "PIPELINE_INPUT"]
    end = tab.evaluate("Date.now()")
    [psi] = call(
        demo,
        "POST",
        f"/api/v3/models/{model['id']}/inferences/query/data_drift",
        {
            "properties": inputs,
            "metric": "PSI",
            "base": {"source": "reference"},
            "target": {
                "source": "inference",
                "filter": [
                    {
                        "property": "inference_timestamp",
                        "comparator": "gte",
                        "value": _iso(end - 24 * 3600 * 1000),
                    },
                    {"property": "inference_timestamp", "comparator": "lt", "value": _iso(end)},
                ],
            },
        },
    )["query_result"]
    shown = tab.locator("table.drift tbody tr").evaluate_all("rows => rows.map(r => r.dataset.attribute)")
    assert shown == sorted(inputs, key=lambda name: -psi[name])
    assert shown[0] == "worst_texture"  # the demo's shifted feature leads
    # the model-level drift alert names it: its row says so; an input it does not name has no rule
    states = tab.locator("table.drift tbody tr td:last-child").all_inner_texts()
    assert states[0] == "alerting (Input Drift)" and set(states[1:]) == {"no rule"}
    tab.locator('tr[data-attribute="worst_texture"] button').click()
    tab.wait_for_selector('figure.histogram[data-attribute="worst_texture"]')
    assert tab.locator("figure.histogram rect.bar-window").count() == 20
    page.shot("model-distribution")


def test_acknowledging_an_alert_in_the_page_changes_it_in_the_api(page: Page, demo: dict) -> None:
    tab = page.open("#/alerts?status=new")
    page.shot("alerts")
    row = tab.locator("table.alerts tbody tr").first
    alert_id = row.get_attribute("data-alert-id")
    row.get_by_role("button", name="Acknowledge").click()
    tab.wait_for_function(
        "id => !document.querySelector(`tr[data-alert-id='${id}']`)", arg=alert_id, timeout=30_000
    )
    assert call(demo, "GET", f"/api/v3/alerts/{alert_id}")["status"] == "acknowledged"


def test_a_rule_threshold_edited_in_the_page_is_saved(page: Page, demo: dict) -> None:
    model = model_of(demo)
    tab = page.open(f"#/rules?model={model['id']}")
    page.shot("rules")
    rule = call(demo, "GET", f"/api/v3/models/{model['id']}/alert_rules?page_size=500")["data"][0]
    row = tab.locator(f'tr[data-rule-id="{rule["id"]}"]')
    row.get_by_label(f"threshold of {rule['name']}").fill("0.75")
    row.get_by_role("button", name="Save").click()
    tab.wait_for_function(
        "([id, v]) => document.querySelector(`tr[data-rule-id='${id}'] input[type=number]`)?.value === v",
        arg=[rule["id"], "0.75"],
    )
    assert call(demo, "GET", f"/api/v3/models/{model['id']}/alert_rules/{rule['id']}")["threshold"] == 0.75


def test_the_ingestion_page_shows_the_apis_counts(page: Page, demo: dict) -> None:
    model = model_of(demo)
    tab = page.open(f"#/ingestion?model={model['id']}")
    page.shot("ingestion")
    status = call(demo, "GET", f"/api/v3/models/{model['id']}/inferences/status")
    cells = tab.locator('table.counts tr[data-variant="all"] td').all_inner_texts()
    assert int(cells[1].replace(",", "")) == status["inferences"]["ingested"]
    assert int(cells[5].replace(",", "")) == status["ground_truth"]["ingested"]


def test_a_wrong_token_shows_the_sign_in_message(browser: Any, demo: dict) -> None:
    tab = Page(browser, demo)
    tab.sign_in("sw_000000000000_" + "x" * 43)
    message = tab.page.wait_for_selector(".signin [role=alert]")
    assert "not accepted" in message.inner_text()
    assert tab.page.locator("#token").is_visible()
    tab.shot("sign-in")
    assert [e for e in tab.errors if "401" not in e] == []  # the browser logs the refused call itself


def test_a_reader_can_look_but_not_change(browser: Any, demo: dict) -> None:
    reader = subprocess.run(
        [*SAGEWATCH, "token", "create", "--role", Role.READER.value, "--state-dir", str(demo["log"].parent)],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    token = next(line.split()[-1] for line in reader.stdout.splitlines() if line.startswith("token:"))
    tab = Page(browser, demo)
    tab.sign_in(token)
    page = tab.open("#/alerts")
    buttons = page.get_by_role("button", name="Acknowledge")
    assert buttons.count() > 0 and all(buttons.nth(i).is_disabled() for i in range(buttons.count()))


def _iso(milliseconds: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(milliseconds / 1000))
        + f".{int(milliseconds % 1000):03d}Z"
    )


def test_the_demo_prints_the_dashboard_address(demo: dict) -> None:
    assert f"dashboard: {demo['api_url']}/" in demo["log"].read_text()


def test_a_drift_alerts_chart_link_shows_that_attributes_drift_over_time(page: Page, demo: dict) -> None:
    model = model_of(demo)
    alerts = call(demo, "GET", f"/api/v3/alerts?model_id={model['id']}&page_size=500")["data"]
    drift = next(a for a in alerts if a["rule_name"].startswith("Input drift"))
    tab = page.open("#/alerts")
    row = tab.locator(f'tr[data-alert-id="{drift["id"]}"]')
    assert "worst_texture" in row.locator("span.drifted").inner_text()  # the input the alert names
    tab.locator(f'tr[data-alert-id="{drift["id"]}"]').get_by_role("link", name="chart").click()
    metric = call(demo, "GET", f"/api/v3/models/{model['id']}/metrics/{drift['metric_id']}")
    tab.wait_for_selector(f'figure.chart[data-metric="{metric["name"]}"]')
    chart = tab.locator(f'figure.chart[data-metric="{metric["name"]}"]')
    assert chart.locator("path.alert-mark").count() >= 1  # the alert, marked at its window
    assert chart.locator("line.threshold").count() >= 1  # and its rule's threshold


def test_per_variant_series_appear_side_by_side(page: Page, demo: dict) -> None:
    """A second production variant's capture file: the model page draws one series per variant."""

    model = model_of(demo)
    s3 = emulated_s3(demo)
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime())
    line = open_capture_line(demo)
    s3.put_object(
        Bucket=demo["buckets"]["capture"],
        Key=f"datacapture/{model['sagemaker']['endpoint_name']}/Challenger/{hour}/c.jsonl",
        Body=(line + "\n").encode(),
    )
    deadline = time.monotonic() + 30
    while (
        "Challenger" not in call(demo, "GET", f"/api/v3/models/{model['id']}/inferences/status")["by_variant"]
    ):
        assert time.monotonic() < deadline, "the challenger's file was not ingested"
        time.sleep(0.5)
    tab = page.open(f"#/model/{model['id']}")
    chart = tab.locator('figure.chart[data-metric="Inference Count by variant"]')
    series = set(chart.locator("circle.point").evaluate_all("cs => cs.map(c => c.dataset.series)"))
    assert series == {"AllTraffic", "Challenger"}


def test_the_pages_are_reachable_by_keyboard(page: Page, demo: dict) -> None:
    model = model_of(demo)
    tab = page.open("#/models")
    for _ in range(40):  # tab through the page until the model's link has the focus
        tab.keyboard.press("Tab")
        if tab.evaluate("document.activeElement.closest('.card') !== null"):
            break
    else:
        pytest.fail("the model card's link cannot be reached with Tab")
    tab.keyboard.press("Enter")
    tab.wait_for_selector(f'main[data-ready] h1:has-text("{model["display_name"]}")')


def open_capture_line(demo: dict) -> str:
    """One Data Capture line of the demo's kind (CSV in, probability out), at the current time."""
    model = model_of(demo)
    inputs = [a for a in model["attributes"] if a["stage"] == "PIPELINE_INPUT"]
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": ",".join("1.0" for _ in inputs),
                    "encoding": "CSV",
                },
                "endpointOutput": {
                    "observedContentType": "text/csv",
                    "mode": "OUTPUT",
                    "data": "0.3",
                    "encoding": "CSV",
                },
            },
            "eventMetadata": {
                "eventId": "challenger-1",
                "inferenceTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            "eventVersion": "0",
        }
    )


def test_the_time_range_is_in_the_address_and_every_chart_follows_it(page: Page, demo: dict) -> None:
    model = model_of(demo)
    metrics = call(demo, "GET", f"/api/v3/models/{model['id']}/metrics?page_size=500")["metrics"]
    count = next(m for m in metrics if m["name"] == "Inference Count")
    tab = page.open(f"#/model/{model['id']}?metrics={count['id']}")
    tab.evaluate("document.querySelector('main').removeAttribute('data-ready')")
    tab.get_by_role("button", name="last 30d").click()
    tab.wait_for_selector("main[data-ready]")
    assert "range=30d" in tab.url
    end = tab.evaluate("Date.now()")
    rows = count_series(demo, model["id"], "day", end - 30 * 86_400_000, end)
    chart = tab.locator('figure.chart[data-metric="Inference Count"]')
    assert chart.locator("circle.point").count() == len(rows)  # one point a day now
    reopened = Page(page.page.context.browser, demo)
    reopened.sign_in(demo["token"])
    reopened.page.wait_for_selector("main[data-ready]")
    shared = reopened.open(tab.url.split("/", 3)[3])  # the same address in another tab
    assert shared.get_by_role("button", name="last 30d").get_attribute("aria-pressed") == "true"


def test_a_rule_created_in_the_page_exists_in_the_api(page: Page, demo: dict) -> None:
    model = model_of(demo)
    before = call(demo, "GET", f"/api/v3/models/{model['id']}/alert_rules?page_size=500")["total_count"]
    tab = page.open(f"#/rules?model={model['id']}")
    tab.get_by_label("metric", exact=True).select_option(label="Inference Count")
    tab.get_by_label("bound", exact=True).select_option("lower")
    tab.get_by_label("threshold", exact=True).fill("5")
    tab.get_by_role("button", name="Create").click()
    tab.wait_for_selector("table.rules tbody tr >> text=Inference Count below 5")
    rules = call(demo, "GET", f"/api/v3/models/{model['id']}/alert_rules?page_size=500")
    assert rules["total_count"] == before + 1
    assert any(r["name"] == "Inference Count below 5" and r["bound"] == "lower" for r in rules["data"])


# -- what the probe of the dashboard found ----------------------------------------------------------


def test_an_empty_threshold_is_refused_not_saved_as_zero(page: Page, demo: dict) -> None:
    model = model_of(demo)
    rule = call(demo, "GET", f"/api/v3/models/{model['id']}/alert_rules?page_size=500")["data"][0]
    tab = page.open(f"#/rules?model={model['id']}")
    row = tab.locator(f'tr[data-rule-id="{rule["id"]}"]')
    row.get_by_label(f"threshold of {rule['name']}").fill("")
    row.get_by_role("button", name="Save").click()
    assert "a number is needed" in tab.locator("main [role=status]").inner_text()
    assert (
        call(demo, "GET", f"/api/v3/models/{model['id']}/alert_rules/{rule['id']}")["threshold"]
        == rule["threshold"]
    )
    before = call(demo, "GET", f"/api/v3/models/{model['id']}/alert_rules?page_size=1")["total_count"]
    tab.get_by_role("button", name="Create").click()  # the new rule's box is empty too
    assert "a number is needed" in tab.locator("main [role=status]").inner_text()
    assert call(demo, "GET", f"/api/v3/models/{model['id']}/alert_rules?page_size=1")["total_count"] == before


def test_a_token_revoked_mid_session_brings_back_the_sign_in_saying_so(browser: Any, demo: dict) -> None:
    created = subprocess.run(
        [*SAGEWATCH, "token", "create", "--role", "writer", "--state-dir", str(demo["log"].parent)],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    token = next(line.split()[-1] for line in created.stdout.splitlines() if line.startswith("token:"))
    tab = Page(browser, demo)
    tab.sign_in(token)
    page = tab.open("#/alerts")
    subprocess.run(
        [*SAGEWATCH, "token", "revoke", token.split("_")[1], "--state-dir", str(demo["log"].parent)],
        env=clean_env(),
        check=True,
        capture_output=True,
    )
    page.get_by_role("button", name="Resolve").first.click()
    message = page.wait_for_selector(".signin [role=alert]")
    assert "not accepted (unknown or revoked)" in message.inner_text()


def test_a_range_whose_from_is_after_its_to_says_so(page: Page, demo: dict) -> None:
    model = model_of(demo)
    tab = page.open(f"#/model/{model['id']}?from=2026-11-30&to=2026-11-28")
    assert "from day is after its to day" in tab.locator("main [role=alert]").inner_text()


def test_the_alerts_page_follows_the_range(page: Page, demo: dict) -> None:
    tab = page.open("#/alerts?from=2020-01-01&to=2020-01-02")
    assert tab.locator("table.alerts").count() == 0
    assert "No alert matches" in tab.locator("main").inner_text()


def test_a_model_without_reference_data_says_so_without_errors(page: Page, demo: dict) -> None:
    body = factories.binary_probability("no-reference-yet")
    created = call(demo, "POST", "/api/v3/models", body)
    tab = page.open(f"#/model/{created['id']}")
    assert "no reference data yet" in tab.locator("main").inner_text()
    # and the page fixture checks that nothing was logged (no refused drift query)


def test_the_variants_page_shows_the_apis_traffic_and_comparison(page: Page, demo: dict) -> None:
    """A second variant with its own labelled traffic: the page's table and verdict are the API's."""
    model = model_of(demo)
    s3 = emulated_s3(demo)
    inputs = len([a for a in model["attributes"] if a["stage"] == "PIPELINE_INPUT"])
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    lines = [
        capture_call(f"b2-{i}", ",".join(["10.0"] * inputs), "0.8" if i % 3 else "0.2", f"b2e-{i}", now)
        for i in range(40)
    ]
    s3.put_object(
        Bucket=demo["buckets"]["capture"],
        Key=f"datacapture/{model['sagemaker']['endpoint_name']}/B2/{time.strftime('%Y/%m/%d/%H', time.gmtime())}/b.jsonl",
        Body=("\n".join(lines) + "\n").encode(),
    )
    labels = [{"partner_inference_id": f"b2-{i}", "ground_truth_data": {"diagnosis": 1}} for i in range(40)]
    deadline = time.monotonic() + 30
    while not any(
        v["variant"] == "B2" for v in call(demo, "GET", f"/api/v3/models/{model['id']}/variants")["data"]
    ):
        assert time.monotonic() < deadline, "the B2 file was not ingested"
        time.sleep(0.5)
    call(demo, "PATCH", f"/api/v3/models/{model['id']}/inferences", labels)
    tab = page.open(f"#/variants?model={model['id']}&challenger=B2&champion=AllTraffic")
    page.shot("variants")
    variants = call(demo, "GET", f"/api/v3/models/{model['id']}/variants")["data"]
    for variant in variants:
        shown = tab.locator(f'tr[data-variant="{variant["variant"]}"] td.share').inner_text()
        assert shown == f"{variant['share'] * 100:.1f}%"
    end = tab.evaluate("Date.now()")
    answer = call(
        demo,
        "POST",
        f"/api/v3/models/{model['id']}/variants/compare",
        {
            "champion": "AllTraffic",
            "challenger": "B2",
            "start_time": _iso(end - 86_400_000),
            "end_time": _iso(end),
        },
    )
    assert tab.locator("p.verdict").get_attribute("data-verdict") == answer["verdict"]
    accuracy = next(m for m in answer["metrics"] if m["metric"] == "accuracy")
    cells = tab.locator('table.comparison tr[data-metric="accuracy"] td').all_inner_texts()
    assert float(cells[1]) == pytest.approx(accuracy["champion"], abs=1e-3)
    assert float(cells[2]) == pytest.approx(accuracy["challenger"], abs=1e-3)


def test_the_variants_page_shows_the_endpoints_it_side(page: Page, demo: dict) -> None:
    """The demo's endpoint publishes its calls to CloudWatch: the page shows the API's numbers."""
    model = model_of(demo)
    tab = page.open(f"#/variants?model={model['id']}")
    health = call(demo, "GET", f"/api/v3/models/{model['id']}/endpoint")
    assert (
        f"Endpoint {health['endpoint']}: {health['status']}"
        in tab.locator("section.endpoint h2").inner_text()
    )
    for variant in health["variants"]:
        calls = tab.locator(
            f'table.endpoint-health tr[data-variant="{variant["variant"]}"] td.calls'
        ).inner_text()
        assert int(calls.replace(",", "")) == variant["invocations"]


def count_series(demo: dict, model_id: str, interval: str, start_ms: float, end_ms: float) -> list[dict]:
    """The API's inference count by interval over [start, end): the series a count chart draws."""
    return call(
        demo,
        "POST",
        f"/api/v3/models/{model_id}/inferences/query",
        {
            "select": [
                {"function": "count"},
                {
                    "function": "roundTimestamp",
                    "alias": "time",
                    "parameters": {"property": "inference_timestamp", "time_interval": interval},
                },
            ],
            "group_by": [{"alias": "time"}],
            "filter": [
                {"property": "inference_timestamp", "comparator": "gte", "value": _iso(start_ms)},
                {"property": "inference_timestamp", "comparator": "lt", "value": _iso(end_ms)},
            ],
        },
    )["query_result"]


def emulated_s3(demo: dict) -> Any:
    """An S3 client of the demo's emulated account (moto takes any credentials)."""
    return boto3.client(
        "s3",
        endpoint_url=demo["aws_endpoint_url"],
        region_name=demo["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_a_query_the_api_runs_in_athena_is_polled_until_its_rows_come(page: Page, demo: dict) -> None:
    """A model's 24-hour count answered 202 (a window past what the api function holds, still
    running in Athena): the page GETs the 202's Location, relative to the call's URL, until 200."""
    model = model_of(demo)
    query = f"/api/v3/models/{model['id']}/inferences/query"
    polled: list[str] = []

    def running(route: Any) -> None:
        if route.request.method != "POST" or "count" not in (route.request.post_data or ""):
            route.fallback()
            return
        body = {"query_id": "q-1", "status": "RUNNING", "poll": f"{query}/q-1", "message": "running"}
        route.fulfill(status=202, headers={"Location": "query/q-1"}, json=body)

    def poll(route: Any) -> None:
        polled.append(route.request.url)
        if len(polled) < 3:
            route.fulfill(
                status=202, headers={"Location": "q-1"}, json={"query_id": "q-1", "status": "RUNNING"}
            )
        else:
            route.fulfill(status=200, json={"query_result": [{"count": 4242}]})

    page.page.route(f"**{query}", running)
    page.page.route(f"**{query}/q-1", poll)
    tab = page.open("#/models")
    card = tab.locator(f'.card[data-model-id="{model["id"]}"]')
    assert card.locator(".inferences-24h").inner_text() == "4,242"
    assert polled == [f"{page.url}{query}/q-1"] * 3
