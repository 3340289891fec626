"""One cached set of stores and services per process, built from the environment's settings.

Handlers and routes ask here for what they use (`monitoring()`, `ingestor()`, ...), so a warm
Lambda builds each once. `reset()` forgets them all, with the boto3 clients, after the environment
changed (tests, the local runtime). Tests may replace what a service holds (its clock, its
notifier) on the cached instance: `evaluator().clock = ...`.
"""

from __future__ import annotations

import functools
from typing import Any

from sagewatch import aws
from sagewatch.services.deepchecks import Deepchecks
from sagewatch.services.endpoints import Endpoints
from sagewatch.services.enrichments import Enrichments
from sagewatch.services.evaluation import Evaluator
from sagewatch.services.explanations import Explanations
from sagewatch.services.hotspots import Hotspots
from sagewatch.services.ingestion import Ingestor
from sagewatch.services.monitoring import Monitoring
from sagewatch.services.registry import Registry
from sagewatch.services.variants import Variants
from sagewatch.stores.alerting import AlertStore, MetricStore, NotificationStore, RuleStore
from sagewatch.stores.athena import AthenaEngine
from sagewatch.stores.catalog import CatalogStore
from sagewatch.stores.deepchecks import DeepchecksStore
from sagewatch.stores.endpoints import EndpointMetrics
from sagewatch.stores.explanations import ExplanationBudget
from sagewatch.stores.hotspots import HotspotStore
from sagewatch.stores.ingestion import IngestionLedger
from sagewatch.stores.invocations import EndpointInvoker
from sagewatch.stores.lake import LakeStore
from sagewatch.stores.models import ModelStore
from sagewatch.stores.notify import Notifier
from sagewatch.stores.objects import SourceObjects
from sagewatch.stores.queues import EvaluateQueue
from sagewatch.stores.tokens import TokenStore

# -- stores -------------------------------------------------------------------------------------------


@functools.cache
def model_store() -> ModelStore:
    """The models table's models."""
    return ModelStore.from_settings()


@functools.cache
def token_store() -> TokenStore:
    """API tokens."""
    return TokenStore.from_settings()


@functools.cache
def lake_store() -> LakeStore:
    """The data lake bucket."""
    return LakeStore.from_settings()


@functools.cache
def ingestion_ledger() -> IngestionLedger:
    """Ingestion counters, batch and reference states."""
    return IngestionLedger.from_settings()


@functools.cache
def evaluate_queue() -> EvaluateQueue:
    """The queue of evaluate messages, one per model."""
    return EvaluateQueue.from_settings()


# -- services -----------------------------------------------------------------------------------------


@functools.cache
def registry() -> Registry:
    """The model registry (and each model's Glue tables, where the stack has a Glue database)."""
    return Registry(model_store(), CatalogStore.from_settings())


@functools.cache
def ingestor() -> Ingestor:
    """Ingestion: S3 objects and API requests into the lake."""
    return Ingestor(
        model_store(), lake_store(), ingestion_ledger(), SourceObjects(), enrichments=enrichments().config
    )


@functools.cache
def endpoints() -> Endpoints:
    """The models' SageMaker endpoints: health and CloudWatch series."""
    return Endpoints(model_store(), EndpointMetrics(), ingestion_ledger())


@functools.cache
def monitoring() -> Monitoring:
    """Queries, metrics, rules, alerts, notification configurations."""
    return Monitoring(
        model_store(),
        lake_store(),
        MetricStore.from_settings(),
        RuleStore.from_settings(),
        AlertStore.from_settings(),
        NotificationStore.from_settings(),
        measure=endpoints().measure_metric,
        ledger=ingestion_ledger(),
        sql=AthenaEngine.from_settings(),  # local mode puts DuckDB here (sagewatch.local.runtime)
    )


@functools.cache
def evaluator() -> Evaluator:
    """The evaluator, sharing monitoring's stores."""
    watched = monitoring()
    return Evaluator(
        models=model_store(),
        metrics=watched.metrics,
        rules=watched.rules,
        alerts=watched.alerts,
        notifications=watched.notifications,
        ledger=ingestion_ledger(),
        loader_for=watched.loader,
        notifier=Notifier(),
        measure=endpoints().measure_metric,
    )


@functools.cache
def enrichments() -> Enrichments:
    """Each model's enrichments configuration."""
    return Enrichments(model_store(), ingestion_ledger(), endpoint=endpoints().metrics.check_monitored)


@functools.cache
def hotspots() -> Hotspots:
    """Hotspot searches: on demand, listed, and on the evaluator's schedule."""
    return Hotspots(
        model_store(), HotspotStore.from_settings(), ingestion_ledger(), enrichments(), monitoring().loader
    )


# What EndpointInvoker calls instead of boto3's sagemaker-runtime (local mode's and tests' stand-in).
_endpoint_runtime: Any = None


def use_endpoint_runtime(client: Any) -> None:
    """Invoke endpoints through `client` (sagewatch.local.endpoints' stand-in), or boto3 again with None."""
    global _endpoint_runtime
    _endpoint_runtime = client
    explanations.cache_clear()


@functools.cache
def explanations() -> Explanations:
    """Explanations of inferences by the models' own SageMaker endpoints."""
    return Explanations(
        model_store(),
        lake_store(),
        ingestion_ledger(),
        enrichments(),
        EndpointInvoker(_endpoint_runtime),
        endpoints().metrics,
        ExplanationBudget.from_settings(),
    )


@functools.cache
def variants() -> Variants:
    """A model's variants: traffic, roles, comparisons."""
    return Variants(model_store(), ingestion_ledger(), monitoring().loader)


@functools.cache
def deepchecks() -> Deepchecks:
    """The Deepchecks door (/api/v1)."""
    return Deepchecks(
        DeepchecksStore.from_settings(), model_store(), ingestion_ledger(), ingestor(), monitoring()
    )


def reset() -> None:
    """Forget every store, service and boto3 client (after the environment changed)."""
    for cached in (
        model_store,
        token_store,
        lake_store,
        ingestion_ledger,
        evaluate_queue,
        registry,
        ingestor,
        monitoring,
        evaluator,
        endpoints,
        variants,
        enrichments,
        hotspots,
        explanations,
        deepchecks,
    ):
        cached.cache_clear()
    aws.reset()
