"""Enrichments: what sagewatch adds to a model's data by itself, and how each is configured.

Three, as in Arthur's onboarding guide, all computed inside the user's account:
- anomaly detection: an isolation forest fitted on the reference set scores every inference
  (`anomaly_score`, in [0, 1]); on by default, ready as soon as reference data exists;
- hotspots: the regions of the input space where the model does markedly worse than overall,
  found by a decision tree over a labelled window; on demand always, on a schedule when enabled;
- explainability: KernelSHAP attributions of sampled inferences, computed by calling the model's
  own SageMaker endpoint with perturbed rows, within a budget of explanations per hour.

The configuration is one document per model (`EnrichmentsConfig`); docs/enrichments.md says more.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EnrichmentName = Literal["anomaly_detection", "explainability", "hotspots", "bias_mitigation"]
ENRICHMENTS: tuple[EnrichmentName, ...] = (
    "anomaly_detection",
    "explainability",
    "hotspots",
    "bias_mitigation",
)
# Arthur's EnrichmentStatus values, which the arthurai SDK waits on.
Status = Literal["Disabled", "Pending", "Training", "Ready", "Failed"]
ENDPOINT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


class AnomalyDetectionConfig(BaseModel):
    """Score every inference against the reference set (on unless turned off)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class HotspotsConfig(BaseModel):
    """Search each closed, labelled window for hotspots on the evaluator's schedule."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False


class ExplainabilityConfig(BaseModel):
    """Explain sampled inferences by calling the model's SageMaker endpoint."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    endpoint_name: str | None = Field(
        default=None,
        pattern=ENDPOINT_NAME,
        description="the endpoint that serves the model; default: the model's sagemaker.endpoint_name",
    )
    variant: str | None = Field(default=None, max_length=63, description="TargetVariant of the calls")
    explanations_per_hour: int = Field(
        default=60, ge=1, le=3600, description="the budget: inferences explained per hour, at most"
    )
    sample_share: float = Field(
        default=1.0, gt=0, le=1, description="the share of new inferences eligible for explanation"
    )
    background_rows: int = Field(
        default=50, ge=1, le=200, description="reference rows the attributions are relative to"
    )
    nsamples: int | None = Field(
        default=None,
        ge=16,
        le=4096,
        description="coalitions per explanation above 8 inputs (below, every coalition is evaluated)",
    )
    streaming: bool = Field(
        default=True, description="explain new inferences on the schedule; false: only on demand"
    )
    seed: int = Field(default=0, ge=0)


class EnrichmentsConfig(BaseModel):
    """A model's enrichments, as stored."""

    model_config = ConfigDict(extra="forbid")

    anomaly_detection: AnomalyDetectionConfig = Field(default_factory=AnomalyDetectionConfig)
    explainability: ExplainabilityConfig = Field(default_factory=ExplainabilityConfig)
    hotspots: HotspotsConfig = Field(default_factory=HotspotsConfig)
