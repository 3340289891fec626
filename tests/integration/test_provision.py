"""The local provisioning creates exactly what the declaration says, and the wiring works."""

from __future__ import annotations

import json
from urllib.parse import unquote_plus

from sagewatch import aws as sagewatch_aws
from sagewatch.resources import DECLARATION


def test_every_declared_table_exists_with_its_keys_and_indexes(aws: dict[str, str]) -> None:
    dynamodb = sagewatch_aws.client("dynamodb")
    for table in DECLARATION.tables:
        description = dynamodb.describe_table(TableName=aws[table.name])["Table"]
        keys = {k["KeyType"]: k["AttributeName"] for k in description["KeySchema"]}
        assert keys.get("HASH") == table.partition_key.name
        assert keys.get("RANGE") == (table.sort_key.name if table.sort_key else None)
        indexes = {i["IndexName"]: i for i in description.get("GlobalSecondaryIndexes", [])}
        assert set(indexes) == {i.name for i in table.indexes}
        assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        if table.ttl_attribute:
            ttl = dynamodb.describe_time_to_live(TableName=aws[table.name])["TimeToLiveDescription"]
            assert ttl["AttributeName"] == table.ttl_attribute


def test_queues_redrive_to_their_dead_letter_queue(aws: dict[str, str]) -> None:
    sqs = sagewatch_aws.client("sqs")
    for queue in DECLARATION.queues:
        attributes = sqs.get_queue_attributes(QueueUrl=aws[f"{queue.name}_url"], AttributeNames=["All"])[
            "Attributes"
        ]
        if queue.dead_letter:
            policy = json.loads(attributes["RedrivePolicy"])
            assert policy["deadLetterTargetArn"].endswith(f":{aws[queue.dead_letter]}")
            assert int(policy["maxReceiveCount"]) == queue.max_receives
        else:
            assert "RedrivePolicy" not in attributes


def test_a_capture_file_landing_in_the_bucket_reaches_the_ingest_queue(aws: dict[str, str]) -> None:
    s3, sqs = sagewatch_aws.client("s3"), sagewatch_aws.client("sqs")
    key = "capture/my-endpoint/AllTraffic/2026/11/25/10/file.jsonl"
    s3.put_object(Bucket=aws["capture"], Key=key, Body=b"{}\n")
    s3.put_object(Bucket=aws["capture"], Key="capture/readme.txt", Body=b"not capture")
    messages = sqs.receive_message(QueueUrl=aws["ingest_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)[
        "Messages"
    ]
    records = [record for m in messages for record in json.loads(m["Body"]).get("Records", [])]
    # S3 events carry keys URL-encoded
    assert [(r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"])) for r in records] == [
        (aws["capture"], key)
    ]


def test_only_the_drops_prefix_of_the_data_bucket_notifies(aws: dict[str, str]) -> None:
    s3, sqs = sagewatch_aws.client("s3"), sagewatch_aws.client("sqs")
    s3.put_object(Bucket=aws["data"], Key="inferences/model_id=m/date=2026-11-25/x.parquet", Body=b"lake")
    s3.put_object(Bucket=aws["data"], Key="drops/m/batch.parquet", Body=b"drop")
    messages = sqs.receive_message(QueueUrl=aws["ingest_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1)[
        "Messages"
    ]
    keys = [
        unquote_plus(r["s3"]["object"]["key"])
        for m in messages
        for r in json.loads(m["Body"]).get("Records", [])
    ]
    assert keys == ["drops/m/batch.parquet"]
