"""Queue pollers of the local runtime: SQS messages in, the real Lambda handler called, as AWS would.

Lambda's SQS event source receives up to 10 messages, calls the function with them, and deletes
the ones not reported in batchItemFailures; failed ones return after the visibility timeout and,
after the queue's maxReceiveCount, go to its dead-letter queue. The poller does the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from sagewatch import aws
from sagewatch.handlers import evaluator, ingest, scheduler
from sagewatch.local.http_bridge import LocalContext
from sagewatch.local.workers import PeriodicWorker

RETRY_AFTER_SECONDS = 10


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS event for a Lambda, as the event source mapping builds it."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def drain(
    queue_url: str, handler: Callable[[dict[str, Any], Any], dict[str, Any]], function_name: str
) -> int:
    """Deliver every message waiting in the queue to the handler; returns how many succeeded."""
    sqs = aws.client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    succeeded = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=RETRY_AFTER_SECONDS,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return succeeded
        event = sqs_event(messages, queue_arn, aws.region())
        try:
            result = handler(event, LocalContext(function_name=function_name))
            failed = {failure["itemIdentifier"] for failure in result.get("batchItemFailures", [])}
        except BatchProcessingError:
            failed = {message["MessageId"] for message in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        succeeded += len(done)
        if failed:
            return succeeded  # the failed ones come back after RETRY_AFTER_SECONDS


def ingest_poller(queue_url: str, interval_seconds: float = 1.0) -> PeriodicWorker:
    """The ingest queue into the ingest Lambda's handler."""
    return PeriodicWorker(
        "ingest", interval_seconds, lambda: drain(queue_url, ingest.handler, "sagewatch-ingest")
    )


def evaluate_poller(queue_url: str, interval_seconds: float = 1.0) -> PeriodicWorker:
    """The evaluate queue into the evaluator Lambda's handler."""
    return PeriodicWorker(
        "evaluate", interval_seconds, lambda: drain(queue_url, evaluator.handler, "sagewatch-evaluator")
    )


def schedule_timer(interval_seconds: float) -> PeriodicWorker:
    """The EventBridge schedule: fans out an evaluation of every model each interval."""
    return PeriodicWorker("schedule", interval_seconds, scheduler.schedule)
