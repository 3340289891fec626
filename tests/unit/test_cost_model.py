"""The cost model's arithmetic (bench/cost_model.py) on hand-computed cases: usage to dollars at the
stated prices, DynamoDB item sizes and request units, request overlap, and the Lambda functions read
from the CDK app's source."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("cost_model", ROOT / "bench" / "cost_model.py")
cm = importlib.util.module_from_spec(_spec)
sys.modules["cost_model"] = cm  # dataclasses resolve their module by name
_spec.loader.exec_module(cm)

INGEST = cm.LambdaSpec("ingest", memory_mb=3008, timeout_seconds=900, architecture="arm64")


def test_a_month_of_usage_is_priced_item_by_item_at_the_stated_prices() -> None:
    usage = cm.Usage(
        functions={"ingest": cm.FunctionUse(invocations=1_000, seconds=2_000)},
        s3_put_tier=10_000,
        s3_get_tier=100_000,
        dynamodb_wru=2_000_000,
        dynamodb_rru=4_000_000,
        sqs_requests=1_000_000,
        log_bytes=2e9,
        traces=200_000,
        stored_gb_months=10,
    )
    items = cm.cost_items(usage, {"ingest": INGEST})
    # by hand: 2,000 s x 3008/1024 GB = 5,875 GB-s at $0.0000133334 (arm64); $0.20 per million requests;
    # S3 $0.005 per 1,000 PUT/LIST and $0.0004 per 1,000 GET; DynamoDB $0.625 per million WRU and
    # $0.125 per million RRU; SQS $0.40 per million; logs $0.50 per GB; X-Ray $5 per million traces;
    # S3 Standard $0.023 per GB-month
    expected = {
        "Lambda ingest: duration": 5_875 * 0.0000133334,
        "Lambda ingest: requests": 0.0002,
        "S3 PUT/LIST requests": 0.05,
        "S3 GET/HEAD requests": 0.04,
        "S3 storage (lake)": 0.23,
        "DynamoDB writes": 1.25,
        "DynamoDB reads": 0.50,
        "SQS requests": 0.40,
        "CloudWatch Logs ingestion": 1.00,
        "X-Ray traces": 1.00,
    }
    assert items == pytest.approx(expected)
    assert cm.total(items) == pytest.approx(4.5485337, abs=1e-6)


def test_an_hour_times_730_is_a_month_and_the_idle_hour_comes_off() -> None:
    busy = cm.Usage(functions={"ingest": cm.FunctionUse(24, 6.0)}, s3_put_tier=48, dynamodb_wru=120)
    idle = cm.Usage(functions={"ingest": cm.FunctionUse(0, 0.0)}, s3_put_tier=24, dynamodb_wru=20)
    month = busy.minus(idle).times(730)
    assert month.functions["ingest"] == cm.FunctionUse(17_520, 4_380.0)
    assert (month.s3_put_tier, month.dynamodb_wru) == (17_520, 73_000)


def test_x86_functions_are_priced_at_the_x86_rate() -> None:
    x86 = cm.LambdaSpec("ingest", memory_mb=1024, timeout_seconds=60, architecture="x86_64")
    duration, requests = cm.lambda_dollars(cm.FunctionUse(10, 100.0), x86)
    assert duration == pytest.approx(100 * 0.0000166667)
    assert requests == pytest.approx(10 * 0.20 / 1e6)


def test_an_hourly_model_monitor_schedule_bills_every_job_for_its_minutes() -> None:
    # 730 jobs a month x 5 min on one ml.m5.xlarge at $0.23 an hour
    assert cm.model_monitor_monthly(730, 5) == pytest.approx(730 * 5 / 60 * 0.23)
    assert cm.model_monitor_monthly(730, 5) == pytest.approx(13.9917, abs=1e-4)


def test_dynamodb_item_sizes_follow_the_published_rules() -> None:
    # names and strings by UTF-8 length; a number 1 byte per two significant digits plus 1;
    # a map 3 bytes plus its elements plus 1 byte each
    assert cm.item_bytes({"pk": {"S": "MODEL#abc"}}) == 2 + 9
    assert cm.item_bytes({"n": {"N": "123.40"}}) == 1 + (2 + 1)  # significant digits 1234
    assert cm.item_bytes({"n": {"N": "-0.005"}}) == 1 + (1 + 1)
    assert cm.item_bytes({"m": {"M": {"a": {"N": "1"}, "é": {"BOOL": True}}}}) == 1 + 3 + (1 + 2 + 1) + (
        2 + 1 + 1
    )
    assert cm.item_bytes({"l": {"L": [{"S": "ab"}, {"NULL": True}]}}) == 1 + 3 + (2 + 1) + (1 + 1)
    assert cm.item_bytes({"b": {"B": b"\x00\x01\x02"}, "ss": {"SS": ["x", "yz"]}}) == (1 + 3) + (2 + 3)


def test_request_units_round_up_to_whole_kilobytes_and_four_kilobyte_steps() -> None:
    assert [cm.write_units(s) for s in (0, 1024, 1025, 3000)] == [1, 1, 2, 3]
    assert cm.read_units(4096, consistent=True) == 1.0
    assert cm.read_units(4097, consistent=True) == 2.0
    assert cm.read_units(100, consistent=False) == 0.5


def test_overlap_is_the_requests_summed_time_over_the_time_any_was_in_flight() -> None:
    assert cm.concurrency([]) == 1.0
    assert cm.concurrency([(0.0, 1.0), (2.0, 3.0)]) == 1.0
    assert cm.concurrency([(0.0, 1.0), (0.0, 1.0)]) == 2.0
    assert cm.concurrency([(1.0, 3.0), (0.0, 2.0)]) == pytest.approx(4 / 3)


def test_functions_are_read_from_the_stacks_source(tmp_path: Path) -> None:
    (tmp_path / "functions.py").write_text(
        "class SagewatchFunction:\n"
        "    def __init__(self, scope, construct_id, *, name, layers, environment, memory_mb: int = 1024,\n"
        "                 timeout=cdk.Duration.seconds(60), description=''):\n"
        "        lambda_.Function(self, 'f', architecture=lambda_.Architecture.X86_64, memory_size=memory_mb)\n"
    )
    (tmp_path / "stack.py").write_text(
        "a = SagewatchFunction(self, 'a', name='ingest', layers=[], environment={}, memory_mb=3008,\n"
        "                      timeout=cdk.Duration.minutes(15))\n"
        "b = SagewatchFunction(self, 'b', name='scheduler', layers=[], environment={})\n"
    )
    assert cm.declared_functions(tmp_path) == {
        "ingest": cm.LambdaSpec("ingest", 3008, 900, "x86_64"),
        "scheduler": cm.LambdaSpec("scheduler", 1024, 60, "x86_64"),
    }


def test_every_deployed_function_is_found_in_the_cdk_app() -> None:
    declared = cm.declared_functions()
    assert set(declared) == {p.name for p in (ROOT / "functions").iterdir() if (p / "handler.py").exists()}
    assert all(
        s.architecture in ("arm64", "x86_64") and 128 <= s.memory_mb <= 10_240 for s in declared.values()
    )
