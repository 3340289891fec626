"""The dashboard on a large model: time to the first chart, and API calls per page.

    python bench/dashboard.py                 # 1,000,000 inferences over 30 days (a few minutes)
    python bench/dashboard.py --rows 100000   # quicker

Starts `sagewatch local` in this process, registers a binary classifier with a reference set, drops
one Parquet file of inferences (with their labels) per day through upload URLs, waits until all are
ingested, then opens each page in Debian's chromium (Playwright) and prints, per page, the time from
navigation to the first chart (or table) and to the whole page, and how many API calls it made.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from playwright.sync_api import sync_playwright

from sagewatch.client import SageWatch
from sagewatch.local.runtime import LocalRuntime

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
ARGS += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
DAYS = 30


def model_body() -> dict:
    attribute = {"stage": "PIPELINE_INPUT", "value_type": "FLOAT"}
    return {
        "partner_model_id": "bench-dashboard",
        "output_type": "BINARY",
        "attributes": [
            {**attribute, "name": "age", "value_type": "INTEGER"},
            {**attribute, "name": "income"},
            {
                **attribute,
                "name": "region",
                "value_type": "STRING",
                "categorical": True,
                "categories": [{"value": v} for v in ("north", "south", "east", "west")],
            },
            {"name": "score", "stage": "PREDICTED_VALUE", "value_type": "FLOAT"},
            {
                "name": "label",
                "stage": "GROUND_TRUTH",
                "value_type": "INTEGER",
                "categorical": True,
                "categories": [{"value": "0"}, {"value": "1"}],
            },
        ],
        "pred_to_ground_truth_map": {"score": 1},
    }


def rows(count: int, start: datetime, seed: int, ids: bool = True) -> pa.Table:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, count)
    columns = {
        "age": rng.integers(18, 90, count),
        "income": rng.normal(50_000, 12_000, count),
        "region": rng.choice(["north", "south", "east", "west"], count),
        "score": np.clip(rng.normal(0.35 + 0.3 * label, 0.2), 0, 1),
        "label": label,
    }
    if ids:
        seconds = rng.integers(0, 86_400, count)
        columns["inference_timestamp"] = pa.array(
            [start + timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC")
        )
        columns["partner_inference_id"] = [f"{seed}-{i}" for i in range(count)]
    return pa.table(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    count = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as state, LocalRuntime(state, api_port=0, aws_port=0) as stack:
        client = SageWatch(stack.api_url, stack.token)
        model = client.register_model(model_body())
        client.set_reference_data(model["id"], rows(20_000, datetime.now(UTC), seed=0, ids=False))
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        began = time.perf_counter()
        for day in range(DAYS):
            start = today - timedelta(days=DAYS - 1 - day)
            client.upload(model["id"], rows(count // DAYS, start, seed=day + 1))
        expected = count // DAYS * DAYS
        while client.status(model["id"])["inferences"]["ingested"] < expected:
            time.sleep(1)
        print(f"{expected:,} inferences over {DAYS} days ingested in {time.perf_counter() - began:.1f} s")

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            calls: list[str] = []
            page.on("request", lambda r: calls.append(r.url) if "/api/" in r.url else None)
            page.goto(stack.api_url + "/")
            page.fill("#token", stack.token)
            page.click("button[type=submit]")
            page.wait_for_selector("main[data-ready]")
            print(f"{'page':<34} {'first chart':>12} {'whole page':>12} {'API calls':>10}")
            for name, address, first in [
                ("models", "#/models", ".card"),
                ("model, last 30 days", f"#/model/{model['id']}?range=30d", "figure.chart"),
                ("model, last 24 h", f"#/model/{model['id']}?range=24h", "figure.chart"),
                ("alerts", "#/alerts", "main h1"),
                ("rules", f"#/rules?model={model['id']}", "main h1"),
                ("ingestion", f"#/ingestion?model={model['id']}", "table.counts"),
            ]:
                page.evaluate(
                    "(m => { m.removeAttribute('data-ready'); m.replaceChildren(); })(document.querySelector('main'))"
                )
                calls.clear()
                began = time.perf_counter()
                page.goto(f"{stack.api_url}/{address}")
                page.wait_for_selector(first, timeout=600_000)
                shown = time.perf_counter() - began
                page.wait_for_selector("main[data-ready]", timeout=600_000)
                whole = time.perf_counter() - began
                print(f"{name:<34} {shown:>10.2f} s {whole:>10.2f} s {len(calls):>10}")
            browser.close()


if __name__ == "__main__":
    main()
