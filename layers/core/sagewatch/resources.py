"""The one declaration of sagewatch's AWS resources.

The CDK stacks (infra/) and the local runtime (sagewatch.local) both build from these objects, so a
laptop stack cannot drift from what `cdk deploy` creates. Each resource has a logical name; the
physical name reaches code through the environment variable `env_var` (set by CDK on every
function, and by the local runtime in its own process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

KeyType = Literal["S", "N", "B"]


@dataclass(frozen=True)
class Key:
    """A key attribute of a table or index: its name and DynamoDB scalar type."""

    name: str
    type: KeyType = "S"


@dataclass(frozen=True)
class Index:
    """A global secondary index. projection ALL keeps reads to one query."""

    name: str
    partition_key: Key
    sort_key: Key | None = None


@dataclass(frozen=True)
class Table:
    """A DynamoDB table: on-demand, point-in-time recovery and encryption in every deployment."""

    name: str
    partition_key: Key
    sort_key: Key | None = None
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None
    purpose: str = ""

    @property
    def env_var(self) -> str:
        """The environment variable holding the table's physical name."""
        return f"SAGEWATCH_{self.name.upper()}_TABLE"


@dataclass(frozen=True)
class Bucket:
    """An S3 bucket: SSE, TLS only, public access blocked, versioned."""

    name: str
    purpose: str = ""

    @property
    def env_var(self) -> str:
        """The environment variable holding the bucket's physical name."""
        return f"SAGEWATCH_{self.name.upper()}_BUCKET"


@dataclass(frozen=True)
class Queue:
    """An SQS queue; `dead_letter` names the queue that receives messages after `max_receives`."""

    name: str
    dead_letter: str | None = None
    max_receives: int = 5
    visibility_timeout_seconds: int = 900
    purpose: str = ""

    @property
    def env_var(self) -> str:
        """The environment variable holding the queue's physical name (dashes as underscores)."""
        return f"SAGEWATCH_{self.name.upper().replace('-', '_')}_QUEUE"


@dataclass(frozen=True)
class Notification:
    """An S3 ObjectCreated notification from a bucket (optionally under a prefix) to a queue."""

    bucket: str
    queue: str
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class Schedule:
    """A recurring EventBridge rule invoking a function (locally: a timer in the runtime)."""

    name: str
    function: str
    rate_minutes: int


@dataclass(frozen=True)
class Declaration:
    """Everything sagewatch needs in an account."""

    tables: tuple[Table, ...]
    buckets: tuple[Bucket, ...]
    queues: tuple[Queue, ...]
    notifications: tuple[Notification, ...]
    schedules: tuple[Schedule, ...] = field(default=())

    def table(self, name: str) -> Table:
        """The table of this logical name (StopIteration when none is declared)."""
        return next(t for t in self.tables if t.name == name)

    def bucket(self, name: str) -> Bucket:
        """The bucket of this logical name (StopIteration when none is declared)."""
        return next(b for b in self.buckets if b.name == name)

    def queue(self, name: str) -> Queue:
        """The queue of this logical name (StopIteration when none is declared)."""
        return next(q for q in self.queues if q.name == name)

    def env_vars(self) -> dict[str, str]:
        """Logical name -> environment variable, for every table, bucket and queue."""
        named = [*self.tables, *self.buckets, *self.queues]
        return {resource.name: resource.env_var for resource in named}


MODELS = Table(
    name="models",
    partition_key=Key("pk"),
    sort_key=Key("sk"),
    # Sparse: only model items carry `kind`, so the index lists models and nothing else.
    indexes=(Index("by-kind", Key("kind"), Key("created_at")),),
    purpose="models with their attributes; guard items keep partner_model_id unique",
)
TOKENS = Table(
    name="tokens",
    partition_key=Key("token_id"),
    purpose="API tokens: role and SHA-256 of the token, never the token itself",
)
RULES = Table(
    name="rules",
    partition_key=Key("model_id"),
    sort_key=Key("rule_id"),
    purpose="alert rules and their evaluated windows (sort key <rule_id>#<window>)",
)
ALERTS = Table(
    name="alerts",
    partition_key=Key("alert_id"),
    indexes=(Index("by-model", Key("model_id"), Key("created_at")),),
    purpose="triggered alerts with their status and notification state",
)
NOTIFICATIONS = Table(
    name="notifications",
    partition_key=Key("config_id"),
    indexes=(Index("by-model", Key("model_id")),),
    purpose="alert notification configurations: email or webhook destinations per model",
)
IDEMPOTENCY = Table(
    name="idempotency",
    partition_key=Key("id"),
    ttl_attribute="expiration",
    purpose="Powertools idempotency records (replayed S3 events are not counted twice)",
)

DATA = Bucket(
    "data",
    purpose="the lake: inferences/, labels/, ground_truth/, inference_ids/, reference/, rejected/, drops/",
)
CAPTURE = Bucket("capture", purpose="SageMaker Data Capture JSONL written by endpoints")

INGEST_DLQ = Queue("ingest-dlq", visibility_timeout_seconds=60, purpose="S3 events that failed 5 times")
# Visibility is six times the consuming function's timeout, as AWS advises for SQS event sources.
INGEST = Queue(
    "ingest",
    dead_letter="ingest-dlq",
    visibility_timeout_seconds=6 * 900,
    purpose="S3 ObjectCreated events to ingest",
)
EVALUATE_DLQ = Queue(
    "evaluate-dlq", visibility_timeout_seconds=60, purpose="model evaluations that failed 5 times"
)
EVALUATE = Queue(
    "evaluate",
    dead_letter="evaluate-dlq",
    visibility_timeout_seconds=6 * 600,
    purpose="one message per model and scheduled run: the evaluator's fan-out",
)

DECLARATION = Declaration(
    tables=(MODELS, TOKENS, RULES, ALERTS, NOTIFICATIONS, IDEMPOTENCY),
    buckets=(DATA, CAPTURE),
    queues=(INGEST_DLQ, INGEST, EVALUATE_DLQ, EVALUATE),
    notifications=(
        Notification(bucket="capture", queue="ingest", suffix=".jsonl"),
        Notification(bucket="capture", queue="ingest", suffix=".jsonl.gz"),
        Notification(bucket="data", queue="ingest", prefix="drops/"),
    ),
    schedules=(Schedule(name="evaluate", function="scheduler", rate_minutes=5),),
)
