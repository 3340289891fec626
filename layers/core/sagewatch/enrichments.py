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

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sagewatch.errors import InvalidInput, Unsupported

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
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class EnrichmentsConfig(BaseModel):
    """A model's enrichments, as stored."""

    model_config = ConfigDict(extra="forbid")

    anomaly_detection: AnomalyDetectionConfig = Field(default_factory=AnomalyDetectionConfig)
    explainability: ExplainabilityConfig = Field(default_factory=ExplainabilityConfig)
    hotspots: HotspotsConfig = Field(default_factory=HotspotsConfig)


# Arthur's explainability settings that size Arthur's own model servers (and those prefixed
# ARTHUR_SERVER_PREFIXES): nothing to run here, so they are accepted and ignored (an SDK sends some
# of them on every update).
ARTHUR_SERVER_SETTINGS = frozenset(
    {"python_version", "sdk_version", "shap_expected_values", "service_account_id"}
)
ARTHUR_SERVER_PREFIXES = ("model_server_", "inference_consumer_")
# Arthur's names for settings sagewatch has under its own names.
ARTHUR_ALIASES = {
    "explanation_nsamples": "nsamples",
    "inference_consumer_score_percent": "sample_share",
    "streaming_explainability_enabled": "streaming",
}
UPLOADED_MODEL = (
    "sagewatch does not run uploaded model code: it explains by calling the model's own SageMaker "
    "endpoint. Give the model a sagemaker.endpoint_name (PUT the model), or send "
    'config {"endpoint_name": ...} in PATCH /api/v3/models/{id}/enrichments, then enable explainability '
    "without project_directory, e.g. model.update_enrichment(Enrichment.Explainability, True, "
    '{"explanation_algo": "shap"})'
)


def apply_changes(
    current: EnrichmentsConfig, changes: Any, uploaded_files: bool, model_endpoint: str | None
) -> EnrichmentsConfig:
    """The configuration after an Arthur-style update {enrichment: {"enabled"?, "config"?}}.

    Raises InvalidInput naming the field for what sagewatch cannot honour, and says what to send
    instead (an uploaded model package: the endpoint that serves the model).
    """
    if not isinstance(changes, dict):
        raise InvalidInput('send {"<enrichment>": {"enabled": ..., "config": {...}}}', field="config")
    if uploaded_files:
        raise Unsupported(UPLOADED_MODEL, field="explainability.config.project_directory")
    updated = current.model_dump()
    sent_as: dict[str, str] = {}  # explainability settings by sagewatch's name: the name the client used
    for name, change in changes.items():
        if name not in ENRICHMENTS:
            raise InvalidInput(f"no enrichment {name!r}: one of {', '.join(ENRICHMENTS)}", field=str(name))
        if not isinstance(change, dict) or set(change) - {"enabled", "config"}:
            raise InvalidInput('send {"enabled": true|false, "config": {...}}', field=name)
        if "enabled" in change and not isinstance(change["enabled"], bool):
            raise InvalidInput("enabled must be true or false", field=f"{name}.enabled")
        config = {} if change.get("config") is None else change["config"]
        if not isinstance(config, dict):
            raise InvalidInput("config must be an object", field=f"{name}.config")
        if name == "bias_mitigation":
            if change.get("enabled") or config:
                raise Unsupported("sagewatch does not support bias mitigation", field="bias_mitigation")
            continue
        section = dict(updated[name])
        if "enabled" in change:
            section["enabled"] = change["enabled"]
        if name == "explainability":
            settings, sent_as = _explainability_settings(config)
            section.update(settings)
        elif config:
            raise InvalidInput(f"{name} has no settings but enabled", field=f"{name}.config")
        updated[name] = section
    try:
        result = EnrichmentsConfig.model_validate(updated, strict=True)  # "60" is not a number here
    except ValidationError as error:
        first = error.errors()[0]
        section, *rest = [str(p) for p in first["loc"]]
        setting = sent_as.get(rest[0], rest[0]) if rest else ""
        raise InvalidInput(
            f"{first['msg']}", field=f"{section}.config.{setting}" if setting else section
        ) from None
    explain = result.explainability
    if explain.enabled and not (explain.endpoint_name or model_endpoint):
        raise InvalidInput(
            "explainability calls the SageMaker endpoint that serves the model: send config.endpoint_name "
            "or give the model a sagemaker.endpoint_name",
            field="explainability.config.endpoint_name",
        )
    return result


def _explainability_settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Arthur's and sagewatch's explainability settings under sagewatch's names, and the name each
    was sent as (errors name what the client sent)."""
    if "project_directory" in config or "user_predict_function_import_path" in config:
        raise Unsupported(UPLOADED_MODEL, field="explainability.config.user_predict_function_import_path")
    settings: dict[str, Any] = {}
    sent_as: dict[str, str] = {}
    for key, value in config.items():
        if key not in ARTHUR_ALIASES and (
            key in ARTHUR_SERVER_SETTINGS or key.startswith(ARTHUR_SERVER_PREFIXES)
        ):
            continue
        if key == "explanation_algo":
            if str(value).lower() != "shap":
                raise Unsupported(
                    f"sagewatch explains with KernelSHAP, not {value!r}: send explanation_algo 'shap' "
                    "or leave it out",
                    field="explainability.config.explanation_algo",
                )
            continue
        name = ARTHUR_ALIASES.get(key, key)
        if name not in ExplainabilityConfig.model_fields or name == "enabled":
            raise InvalidInput(
                f"no explainability setting {key!r}: one of "
                f"{', '.join(sorted(set(ExplainabilityConfig.model_fields) - {'enabled'}))}",
                field=f"explainability.config.{key}",
            )
        if name in settings:
            raise InvalidInput(
                f"{sent_as[name]!r} and {key!r} are the same setting: send one",
                field=f"explainability.config.{key}",
            )
        if key == "inference_consumer_score_percent" and isinstance(value, str):
            value = _number(value, key)  # Arthur sends the share as a string
        settings[name], sent_as[name] = value, key  # validated with the whole config
    return settings, sent_as


def _number(text: str, key: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a number", field=f"explainability.config.{key}") from None


def arthur_view(
    config: EnrichmentsConfig, statuses: dict[str, Status], model_endpoint: str | None
) -> dict[str, dict[str, Any]]:
    """GET /enrichments in Arthur's shape: each enrichment's enabled, status and config."""
    explain = config.explainability
    return {
        "anomaly_detection": {
            "enabled": config.anomaly_detection.enabled,
            "status": statuses["anomaly_detection"],
            "config": {},
        },
        "explainability": {
            "enabled": explain.enabled,
            "status": statuses["explainability"],
            "config": {
                **explain.model_dump(exclude={"enabled"}),
                "endpoint_name": explain.endpoint_name or model_endpoint,
                "explanation_algo": "shap",
                "explanation_nsamples": explain.nsamples,
                "streaming_explainability_enabled": explain.streaming,
                "inference_consumer_score_percent": explain.sample_share,
            },
        },
        "hotspots": {"enabled": config.hotspots.enabled, "status": statuses["hotspots"], "config": {}},
        "bias_mitigation": {"enabled": False, "status": "Disabled", "config": {}},
    }
