"""Explainability: an inference's SHAP attributions (Arthur's explanation shape, which arthurai's
explain_inference reads) and the mean |attribution| per input over a window, for charting importance.

Computing an explanation calls the model's endpoint: a reader token reads stored explanations, a
writer's request may compute one (or have it queued for the evaluator: a 202)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from sagewatch.api import ERROR_CONTENT
from sagewatch.container import explanations
from sagewatch.services.explanations import LOOKUP_DAYS, Queued, check_algorithm

router = Router()


class ImportanceScore(BaseModel):
    """An input's attribution to one output."""

    attribute_name: str
    explanation_value: float | None
    tokens: None = None


class OutputExplanation(BaseModel):
    """The attributions to one predicted attribute."""

    algorithm: Literal["shap"] = "shap"
    predicted_attribute_name: str
    importance_scores: list[ImportanceScore]


class ExpectedValue(BaseModel):
    """The mean prediction on the background (the attributions add up to the prediction minus it)."""

    predicted_attribute_name: str
    expected_value: float


class Explanation(BaseModel):
    """An inference's explanation, Arthur's shape."""

    partner_inference_id: str
    explained_at: datetime
    explanation: list[OutputExplanation]
    expected_value: list[ExpectedValue]


class ExplanationQueued(BaseModel):
    """No explanation yet: it did not fit one request, and the evaluator's next run computes it."""

    partner_inference_id: str
    status: Literal["queued"] = "queued"
    message: str


class InputImportance(BaseModel):
    """An input's mean |attribution| over the window."""

    attribute_name: str
    mean_absolute_attribution: float | None


class ImportancePoint(BaseModel):
    """One interval: explanations counted and each input's mean |attribution|."""

    time: datetime
    count: int
    importance: dict[str, float | None]


class OutputImportance(BaseModel):
    """Importance for one predicted attribute, most important input first, and its series."""

    predicted_attribute_name: str
    count: int
    importance: list[InputImportance]
    series: list[ImportancePoint]


class Importance(BaseModel):
    """Mean |attribution| per input of the inferences explained in [start_time, end_time)."""

    start_time: datetime
    end_time: datetime
    interval: Literal["hour", "day"]
    outputs: list[OutputImportance]


@router.get(
    "/models/<model_id>/inferences/<partner_inference_id>/explanation",
    summary="An inference's SHAP attributions (stored, or computed now within the hourly budget)",
    description=(
        "A stored explanation, else (writer tokens only: it calls the model's endpoint) one computed "
        "now within the hourly budget (429 over it). Work too large for one request is queued for the "
        "evaluator's next run (202). An inference that could not be explained answers 422 with the reason. "
        f"The inference is looked for in its last {LOOKUP_DAYS} days (UTC, newest first; 404 when not there): name an "
        "older one's day with inference_date (the UTC day of its inference_timestamp)."
    ),
    tags=["explainability"],
    responses={
        200: {"description": "The explanation", "content": {"application/json": {"model": Explanation}}},
        202: {
            "description": "Queued for the evaluator's next run",
            "content": {"application/json": {"model": ExplanationQueued}},
        },
        422: {"description": "the inference could not be explained: the reason", "content": ERROR_CONTENT},
        429: {
            "description": "the model's hourly explanation budget is spent, or its endpoint throttled: retry later",
            "content": ERROR_CONTENT,
        },
        503: {
            "description": "the model's endpoint is failing, or the request ran out of time: retry later",
            "content": ERROR_CONTENT,
        },
    },
)
def inference_explanation(
    model_id: str,
    partner_inference_id: str,
    algorithm: Annotated[str, Query()] = "shap",
    inference_date: Annotated[date | None, Query()] = None,
) -> Response[Explanation | ExplanationQueued]:
    check_algorithm(algorithm)
    answer: dict[str, Any] | Queued = explanations().explain(
        model_id, partner_inference_id, router.context.get("token"), inference_date
    )
    if isinstance(answer, Queued):
        return Response(
            202,
            content_types.APPLICATION_JSON,
            ExplanationQueued(partner_inference_id=answer.partner_inference_id, message=answer.message),
        )
    return Response(200, content_types.APPLICATION_JSON, Explanation(**answer))


@router.get(
    "/models/<model_id>/explanations/importance",
    summary="Mean |attribution| per input over a window, overall and per hour or day",
    tags=["explainability"],
)
def explanation_importance(
    model_id: str,
    start_time: Annotated[datetime | None, Query()] = None,
    end_time: Annotated[datetime | None, Query()] = None,
    interval: Annotated[Literal["hour", "day"], Query()] = "day",
) -> Importance:
    end = _aware(end_time) if end_time else datetime.now(UTC)
    start = _aware(start_time) if start_time else end - timedelta(days=7)
    return Importance(**explanations().importance(model_id, start, end, interval))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
