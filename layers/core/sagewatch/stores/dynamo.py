"""What every DynamoDB store shares: typed (de)serialisation and the translation of botocore errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from sagewatch import aws
from sagewatch.settings import Settings

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


SMALLEST_NUMBER = 1e-130  # DynamoDB refuses a number of smaller magnitude (a p-value of 1e-156, say)


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict as a DynamoDB item (floats become Decimals, None values are dropped); a float
    nearer 0 than DynamoDB can hold is stored as 0."""
    return {
        key: _serializer.serialize(_number(value) if isinstance(value, float) else value)
        for key, value in values.items()
        if value is not None
    }


def _number(value: float) -> Decimal:
    return Decimal(0) if abs(value) < SMALLEST_NUMBER else Decimal(str(value))


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as a plain dict (whole-number Decimals become ints, others floats)."""
    plain = {key: _deserializer.deserialize(value) for key, value in item.items()}
    return {key: _plain_number(value) for key, value in plain.items()}


def _plain_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def error_code(error: ClientError) -> str:
    """botocore's error code ("ConditionalCheckFailedException", "NoSuchKey", ...)."""
    return str(error.response.get("Error", {}).get("Code", ""))


CONDITION_FAILED = "ConditionalCheckFailed"


def conditional(call: Callable[..., dict[str, Any]], **request: Any) -> dict[str, Any] | None:
    """One conditional write (put_item, update_item, delete_item): its response, or None when its
    ConditionExpression did not hold. The one place DynamoDB's refusal is recognised; what a
    refusal means (NotFound, ConcurrentUpdate, a replay) each store says. Other failures propagate."""
    try:
        return call(**request)
    except ClientError as error:
        if error_code(error) == f"{CONDITION_FAILED}Exception":
            return None
        raise


def transaction(client: Any, items: list[dict[str, Any]]) -> list[str]:
    """Write items atomically: [] when written, else one reason per item of the cancelled
    transaction (CONDITION_FAILED for an item whose condition did not hold, "None" for one that did)."""
    try:
        client.transact_write_items(TransactItems=items)
    except ClientError as error:
        if error_code(error) != "TransactionCanceledException":
            raise
        return [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
    return []


def query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a query, following LastEvaluatedKey."""
    paginator = client.get_paginator("query")
    for page in paginator.paginate(**kwargs):
        yield from page.get("Items", [])


class DynamoStore:
    """Base of the table stores: the table's physical name and the process-wide client."""

    #: logical table name in sagewatch.resources
    table: str = ""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Any:
        return cls((settings or Settings.from_env()).name(cls.table))

    @property
    def client(self) -> Any:
        return self._client or aws.client("dynamodb")
