"""The scheduler's fan-out on moto: what each scheduled run asks of SQS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests import factories

from sagewatch import aws as sagewatch_aws
from sagewatch import container
from sagewatch.handlers.scheduler import schedule
from sagewatch.schema import ModelSpec

NOW = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)


def test_runs_after_the_first_send_without_looking_the_queue_up_again(aws: dict[str, str]) -> None:
    # GIVEN two models and a count of the SQS calls the scheduler makes
    models = [
        container.model_store().create(ModelSpec.model_validate(factories.binary_probability(f"m{i}")))
        for i in range(2)
    ]
    calls: list[str] = []
    events = sagewatch_aws.client("sqs").meta.events
    events.register("before-call.sqs.*", lambda model, **_: calls.append(model.name))

    # WHEN the schedule runs three times
    for run in range(3):
        assert schedule(NOW + timedelta(minutes=5 * run)) == 2

    # THEN the queue's URL was asked for once, and every run queued both models
    assert calls.count("GetQueueUrl") == 1
    assert calls.count("SendMessageBatch") == 3
    sqs = sagewatch_aws.client("sqs")
    queued = []
    while batch := sqs.receive_message(QueueUrl=aws["evaluate_url"], MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        queued += [json.loads(m["Body"])["model_id"] for m in batch]
    assert sorted(queued) == sorted([m.id for m in models] * 3)
