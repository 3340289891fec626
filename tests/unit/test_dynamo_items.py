"""Plain values as DynamoDB items: what DynamoDB's number type cannot hold is refused before AWS sees it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeSerializer

from sagewatch.stores.dynamo import from_item, to_item


def test_a_p_value_smaller_than_dynamodb_holds_is_stored_as_zero() -> None:
    # boto3 itself refuses such a number (DynamoDB holds magnitudes from 1e-130): the evaluator's
    # window record of a p-value of 5e-156 would fail
    with pytest.raises(Exception, match="Underflow"):
        TypeSerializer().serialize(Decimal(str(5.199598317481877e-156)))
    assert from_item(to_item({"value": 5e-156, "other": -3e-200})) == {"value": 0, "other": 0}


def test_ordinary_numbers_round_trip() -> None:
    values = {"p": 1.4e-71, "accuracy": 0.7605, "rows": 167, "tiny": 2e-130}
    assert from_item(to_item(values)) == values
