"""The cost model's pure part: AWS prices (with their sources), the Lambda functions as infra/ declares
them, and the arithmetic from usage to dollars. bench/cost.py measures the usage; this module only
prices it, so a hand-computed case can check it (tests/unit/test_cost_model.py).

Prices are us-east-1 list prices, on-demand, without free tiers (the free tiers are per account and
shared with everything else in it). Each price names the page it comes from and the date it was
taken; re-check them before quoting a figure.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HOURS_PER_MONTH = 730  # AWS's own convention on its pricing pages (8,760 hours / 12)
PRICES_TAKEN = "2026-11-30"


@dataclass(frozen=True)
class Price:
    """A unit price in US dollars, the unit it is per, and where it was published."""

    dollars: float
    per: str
    source: str


PRICES: dict[str, Price] = {
    "lambda_gb_second_arm64": Price(
        0.0000133334, "GB-second, arm64, first 7.5 billion a month", "https://aws.amazon.com/lambda/pricing/"
    ),
    "lambda_gb_second_x86_64": Price(
        0.0000166667, "GB-second, x86_64, first 6 billion a month", "https://aws.amazon.com/lambda/pricing/"
    ),
    "lambda_request": Price(
        0.20 / 1e6, "request ($0.20 per million)", "https://aws.amazon.com/lambda/pricing/"
    ),
    "s3_put_tier": Price(
        0.005 / 1000, "PUT, COPY, POST or LIST request, S3 Standard", "https://aws.amazon.com/s3/pricing/"
    ),
    "s3_get_tier": Price(
        0.0004 / 1000,
        "GET, SELECT or other request (HEAD), S3 Standard",
        "https://aws.amazon.com/s3/pricing/",
    ),
    "s3_gb_month": Price(0.023, "GB-month, S3 Standard, first 50 TB", "https://aws.amazon.com/s3/pricing/"),
    "dynamodb_wru": Price(
        0.625 / 1e6, "write request unit, on-demand", "https://aws.amazon.com/dynamodb/pricing/on-demand/"
    ),
    "dynamodb_rru": Price(
        0.125 / 1e6, "read request unit, on-demand", "https://aws.amazon.com/dynamodb/pricing/on-demand/"
    ),
    "sqs_request": Price(
        0.40 / 1e6, "request to a standard queue (each 64 KB chunk)", "https://aws.amazon.com/sqs/pricing/"
    ),
    "logs_gb_ingested": Price(
        0.50, "GB of logs ingested (Standard class)", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "logs_gb_month": Price(0.03, "GB-month of logs stored", "https://aws.amazon.com/cloudwatch/pricing/"),
    "custom_metric_month": Price(
        0.30, "custom metric a month, first 10,000", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "dashboard_month": Price(3.00, "dashboard a month", "https://aws.amazon.com/cloudwatch/pricing/"),
    "alarm_month": Price(
        0.10, "standard-resolution alarm a month", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "xray_trace": Price(
        5.00 / 1e6, "trace recorded ($5.00 per million)", "https://aws.amazon.com/xray/pricing/"
    ),
    "eventbridge_scheduled_event": Price(
        0.0,
        "event of a scheduled rule on the default bus (not a custom, partner or opt-in event)",
        "https://aws.amazon.com/eventbridge/pricing/",
    ),
    "athena_tb_scanned": Price(
        5.00, "TB scanned (10 MB minimum a query)", "https://aws.amazon.com/athena/pricing/"
    ),
    "sagemaker_processing_m5_xlarge_hour": Price(
        0.23,
        "hour of an ml.m5.xlarge processing instance (Model Monitor jobs)",
        "https://aws.amazon.com/sagemaker/pricing/",
    ),
}


def price(name: str) -> float:
    """The dollars of one unit of `name` (a key of PRICES)."""
    return PRICES[name].dollars


# -- the functions as infra/ declares them -----------------------------------------------------------


@dataclass(frozen=True)
class LambdaSpec:
    """One Lambda function as the CDK app builds it: memory, timeout, architecture."""

    name: str
    memory_mb: int
    timeout_seconds: int
    architecture: str  # "arm64" or "x86_64"

    @property
    def memory_gb(self) -> float:
        """Memory in GB as Lambda bills it (MB / 1024)."""
        return self.memory_mb / 1024


_ARCHITECTURES = {"ARM_64": "arm64", "X86_64": "x86_64"}
_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600}


def _literal(node: ast.expr) -> Any:
    """A constant, or a Duration.<unit>(n) as seconds; None for anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _SECONDS
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return node.args[0].value * _SECONDS[node.func.attr]
    return None


def declared_functions(infra: Path = ROOT / "infra") -> dict[str, LambdaSpec]:
    """Every `SagewatchFunction(..., name=..., memory_mb=..., timeout=...)` of the CDK app, by name,
    with the defaults and the architecture of the construct in infra/functions.py. Read from the
    source (ast), so the cost model follows the stacks without synthesizing them."""
    construct = ast.parse((infra / "functions.py").read_text())
    defaults: dict[str, Any] = {}
    architecture = "x86_64"  # Lambda's default when none is set
    for node in ast.walk(construct):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            arguments = node.args.kwonlyargs
            for argument, default in zip(arguments, node.args.kw_defaults, strict=True):
                if default is not None:
                    defaults[argument.arg] = _literal(default)
        if (
            isinstance(node, ast.keyword)
            and node.arg == "architecture"
            and isinstance(node.value, ast.Attribute)
        ):
            architecture = _ARCHITECTURES.get(node.value.attr, architecture)
    found: dict[str, LambdaSpec] = {}
    for path in sorted(infra.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "SagewatchFunction"):
                continue
            given = {k.arg: _literal(k.value) for k in node.keywords if k.arg}
            settings = {**defaults, **{k: v for k, v in given.items() if v is not None}}
            name = settings.get("name")
            if not isinstance(name, str):
                continue
            found[name] = LambdaSpec(
                name=name,
                memory_mb=int(settings["memory_mb"]),
                timeout_seconds=int(settings["timeout"]),
                architecture=architecture,
            )
    return found


# -- DynamoDB request units ----------------------------------------------------------------------


def _number_bytes(text: str) -> int:
    """A number's stored size: 1 byte per two significant digits, plus 1 (DynamoDB's item sizes)."""
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def attribute_bytes(value: Mapping[str, Any]) -> int:
    """The stored size of one typed attribute value ({"S": ...}, {"N": ...}, {"M": {...}}, ...), after
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html:
    strings and binaries by length, numbers by significant digits, a map or list 3 bytes plus its
    elements plus 1 byte each, booleans and nulls 1 byte."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "B":
        return len(data)
    if kind == "N":
        return _number_bytes(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "NS":
        return sum(_number_bytes(n) for n in data)
    if kind == "L":
        return 3 + sum(attribute_bytes(v) + 1 for v in data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_bytes(v) + 1 for k, v in data.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_bytes(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """An item's size: each attribute's name (UTF-8) and value."""
    return sum(len(name.encode()) + attribute_bytes(value) for name, value in (item or {}).items())


def write_units(size: int) -> int:
    """Write request units of one write of an item of `size` bytes: one per KB, at least one."""
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    """Read request units of reading `size` bytes in one request: one per 4 KB strongly consistent,
    half that eventually consistent, at least one 4 KB step."""
    steps = max(1, math.ceil(size / 4096))
    return float(steps) if consistent else steps / 2


# -- usage and dollars ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionUse:
    """A function's invocations and billed duration over some period."""

    invocations: float = 0.0
    seconds: float = 0.0  # billed duration, summed over the invocations

    def plus(self, other: FunctionUse) -> FunctionUse:
        """Both periods together."""
        return FunctionUse(self.invocations + other.invocations, self.seconds + other.seconds)

    def times(self, factor: float) -> FunctionUse:
        """The period repeated `factor` times."""
        return FunctionUse(self.invocations * factor, self.seconds * factor)


@dataclass(frozen=True)
class Usage:
    """What sagewatch used over some period, in the units AWS bills."""

    functions: dict[str, FunctionUse] = field(default_factory=dict)
    s3_put_tier: float = 0.0  # PUT, COPY, POST, LIST requests
    s3_get_tier: float = 0.0  # GET, HEAD and other requests
    dynamodb_wru: float = 0.0
    dynamodb_rru: float = 0.0
    sqs_requests: float = 0.0
    log_bytes: float = 0.0  # CloudWatch Logs ingested
    traces: float = 0.0  # X-Ray traces recorded
    stored_gb_months: float = 0.0  # S3 Standard

    def times(self, factor: float) -> Usage:
        """This usage repeated `factor` times (an hour's usage times 730 is a month's)."""
        scalars = {f.name: getattr(self, f.name) * factor for f in fields(self) if f.name != "functions"}
        return Usage({n: u.times(factor) for n, u in self.functions.items()}, **scalars)

    def plus(self, other: Usage) -> Usage:
        """Both usages together."""
        scalars = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "functions"
        }
        names = set(self.functions) | set(other.functions)
        functions = {
            n: self.functions.get(n, FunctionUse()).plus(other.functions.get(n, FunctionUse())) for n in names
        }
        return Usage(functions, **scalars)

    def minus(self, other: Usage) -> Usage:
        """This usage less another (the part of a busy hour above an idle one)."""
        return self.plus(other.times(-1.0))


def lambda_dollars(use: FunctionUse, spec: LambdaSpec) -> tuple[float, float]:
    """(duration dollars, request dollars) of a function's use: GB-seconds (billed seconds x memory
    in GB) at its architecture's price, and its invocations at the request price."""
    gb_seconds = use.seconds * spec.memory_gb
    return gb_seconds * price(f"lambda_gb_second_{spec.architecture}"), use.invocations * price(
        "lambda_request"
    )


def cost_items(usage: Usage, specs: Mapping[str, LambdaSpec]) -> dict[str, float]:
    """Dollars by bill item for a usage; Lambda items are per function (`specs` gives each one's
    memory and architecture)."""
    items: dict[str, float] = {}
    for name in sorted(usage.functions):
        duration, requests = lambda_dollars(usage.functions[name], specs[name])
        items[f"Lambda {name}: duration"] = duration
        items[f"Lambda {name}: requests"] = requests
    items |= {
        "S3 PUT/LIST requests": usage.s3_put_tier * price("s3_put_tier"),
        "S3 GET/HEAD requests": usage.s3_get_tier * price("s3_get_tier"),
        "S3 storage (lake)": usage.stored_gb_months * price("s3_gb_month"),
        "DynamoDB writes": usage.dynamodb_wru * price("dynamodb_wru"),
        "DynamoDB reads": usage.dynamodb_rru * price("dynamodb_rru"),
        "SQS requests": usage.sqs_requests * price("sqs_request"),
        "CloudWatch Logs ingestion": usage.log_bytes / 1e9 * price("logs_gb_ingested"),
        "X-Ray traces": usage.traces * price("xray_trace"),
    }
    return items


def total(items: Mapping[str, float]) -> float:
    """The sum of the bill items."""
    return sum(items.values())


def model_monitor_monthly(runs_per_month: float, billed_minutes: float, instances: int = 1) -> float:
    """Dollars a month of a SageMaker Model Monitor schedule: each run one processing job on
    `instances` ml.m5.xlarge billed for `billed_minutes`."""
    return runs_per_month * instances * billed_minutes / 60 * price("sagemaker_processing_m5_xlarge_hour")


# -- what a request takes in Lambda (assumed, not measured) --------------------------------------


@dataclass(frozen=True)
class Latency:
    """The time a request is assumed to take from a Lambda in the same region: a fixed part per
    request, plus its bytes over a throughput."""

    seconds: float
    source: str
    bytes_per_second: float = 0.0  # 0: no size-dependent part

    def of(self, size: int) -> float:
        """Seconds for one request moving `size` bytes."""
        return self.seconds + (size / self.bytes_per_second if self.bytes_per_second else 0.0)


LATENCIES: dict[str, Latency] = {
    "s3": Latency(
        0.030,
        "assumed: 'tens of milliseconds' median for requests under 512 KB, "
        "https://docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-practices/"
        "timeouts-and-retries-for-latency-sensitive-applications.html; 100 MB/s per stream assumed",
        bytes_per_second=100e6,
    ),
    "dynamodb": Latency(0.008, "assumed: 'single-digit millisecond', https://aws.amazon.com/dynamodb/"),
    "sqs": Latency(0.020, "assumed (AWS publishes no SQS latency)"),
    "other": Latency(0.050, "assumed (SES, CloudWatch, SageMaker control plane)"),
}


def request_seconds(service: str, size: int = 0) -> float:
    """The assumed time of one request to `service` moving `size` bytes."""
    return LATENCIES.get(service, LATENCIES["other"]).of(size)


def concurrency(intervals: Iterable[tuple[float, float]]) -> float:
    """How many requests were in flight at once on average: their summed durations over the time
    at least one was (1 with none)."""
    spans = sorted(intervals)
    busy, end = 0.0, float("-inf")
    for began, ended in spans:
        busy += max(0.0, ended - max(began, end))
        end = max(end, ended)
    return sum(ended - began for began, ended in spans) / busy if busy > 0 else 1.0


def per_ten_million(items: Mapping[str, float], inferences: float) -> dict[str, float]:
    """Bill items scaled from `inferences` to 10 million inferences."""
    return {name: dollars / inferences * 1e7 for name, dollars in items.items()}
