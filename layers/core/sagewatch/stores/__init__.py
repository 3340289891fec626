"""The stores, one per table or bucket, created once per process from the environment's settings."""

from __future__ import annotations

import functools

from sagewatch import aws
from sagewatch.stores.models import ModelStore
from sagewatch.stores.tokens import TokenStore


@functools.cache
def model_store() -> ModelStore:
    return ModelStore.from_settings()


@functools.cache
def token_store() -> TokenStore:
    return TokenStore.from_settings()


def reset() -> None:
    """Forget stores and clients (after the environment changed: tests, the local runtime)."""
    model_store.cache_clear()
    token_store.cache_clear()
    aws.reset()


__all__ = ["ModelStore", "TokenStore", "model_store", "reset", "token_store"]
