"""The stores, one per table or bucket, created once per process from the environment's settings."""

from __future__ import annotations

import functools

from sagewatch import aws
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.lake import LakeStore
from sagewatch.stores.models import ModelStore
from sagewatch.stores.tokens import TokenStore


@functools.cache
def model_store() -> ModelStore:
    return ModelStore.from_settings()


@functools.cache
def token_store() -> TokenStore:
    return TokenStore.from_settings()


@functools.cache
def lake_store() -> LakeStore:
    return LakeStore.from_settings()


@functools.cache
def ingestion_ledger() -> IngestionLedger:
    return IngestionLedger.from_settings()


def reset() -> None:
    """Forget stores and clients (after the environment changed: tests, the local runtime)."""
    for cached in (model_store, token_store, lake_store, ingestion_ledger):
        cached.cache_clear()
    aws.reset()
    from sagewatch.alerting import service  # the evaluator holds stores too

    service.reset()
    from sagewatch.deepchecks import service as deepchecks

    deepchecks.reset()


__all__ = [
    "IngestionLedger",
    "LakeStore",
    "ModelStore",
    "TokenStore",
    "ingestion_ledger",
    "lake_store",
    "model_store",
    "reset",
    "token_store",
]
