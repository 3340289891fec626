"""EndpointMetrics: a SageMaker endpoint's health (DescribeEndpoint) and its CloudWatch series
(AWS/SageMaker: invocations, 4xx and 5xx errors, model and overhead latency), per production variant.

One GetMetricData call reads every series of an endpoint (following NextToken). Latencies arrive in
microseconds and are returned in milliseconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from sagewatch import aws
from sagewatch.errors import Forbidden, NotFound
from sagewatch.stores.dynamo import error_code

NAMESPACE = "AWS/SageMaker"
# name -> (CloudWatch metric, statistic, factor to the unit sagewatch gives)
SERIES: dict[str, tuple[str, str, float]] = {
    "invocations": ("Invocations", "Sum", 1.0),
    "errors_4xx": ("Invocation4XXErrors", "Sum", 1.0),
    "errors_5xx": ("Invocation5XXErrors", "Sum", 1.0),
    "model_latency_ms": ("ModelLatency", "Average", 0.001),
    "model_latency_max_ms": ("ModelLatency", "Maximum", 0.001),
    "overhead_latency_ms": ("OverheadLatency", "Average", 0.001),
}
# Tag an endpoint with this for sagewatch to describe it (the IAM policy is scoped by it).
MONITORED_TAG = "sagewatch:monitored"


class EndpointMetrics:
    """Reads endpoints' state and metrics; botocore's refusals become NotFound or Forbidden."""

    def __init__(self, cloudwatch: Any = None, sagemaker: Any = None) -> None:
        self._cloudwatch, self._sagemaker = cloudwatch, sagemaker

    @property
    def cloudwatch(self) -> Any:
        """The process's CloudWatch client (or the one given)."""
        return self._cloudwatch or aws.client("cloudwatch")

    @property
    def sagemaker(self) -> Any:
        """The process's SageMaker client (or the one given)."""
        return self._sagemaker or aws.client("sagemaker")

    def describe(self, endpoint: str) -> dict[str, Any]:
        """Status, last change and the variants with their instance counts."""
        try:
            found = self.sagemaker.describe_endpoint(EndpointName=endpoint)
        except ClientError as error:
            if error_code(error) in ("AccessDeniedException", "AccessDenied"):
                raise Forbidden(
                    f"sagewatch may not describe endpoint {endpoint!r}: tag it {MONITORED_TAG}=true",
                    field="sagemaker.endpoint_name",
                ) from None
            if error_code(error) in ("ValidationException", "ResourceNotFound"):
                raise NotFound(
                    f"no SageMaker endpoint {endpoint!r}", field="sagemaker.endpoint_name"
                ) from None
            raise
        variants = [*found.get("ProductionVariants", []), *found.get("ShadowProductionVariants", [])]
        return {
            "endpoint": endpoint,
            "arn": found.get("EndpointArn"),
            "status": found["EndpointStatus"],
            "last_modified": found.get("LastModifiedTime"),
            "failure_reason": found.get("FailureReason"),
            "variants": [
                {
                    "variant": v["VariantName"],
                    "instances": v.get("CurrentInstanceCount"),
                    "desired_instances": v.get("DesiredInstanceCount"),
                    "shadow": v in found.get("ShadowProductionVariants", []),
                }
                for v in variants
            ],
        }

    def check_monitored(self, endpoint: str) -> dict[str, Any]:
        """The endpoint as `describe` gives it, when it is tagged MONITORED_TAG=true; Forbidden otherwise.

        GetMetricData cannot be scoped by IAM, so sagewatch itself reads no endpoint's metrics that its
        owner did not tag for it (the DescribeEndpoint grant carries the same condition).
        """
        described = self.describe(endpoint)
        try:
            tags = self.sagemaker.list_tags(ResourceArn=described["arn"]).get("Tags", [])
        except ClientError as error:
            if error_code(error) in ("AccessDeniedException", "AccessDenied"):
                tags = []
            else:
                raise
        if not any(t.get("Key") == MONITORED_TAG and t.get("Value") == "true" for t in tags):
            raise Forbidden(
                f"endpoint {endpoint!r} is not tagged {MONITORED_TAG}=true: tag the endpoints sagewatch may watch",
                field="sagemaker.endpoint_name",
            )
        return described

    def series(
        self, endpoint: str, variants: list[str], start: datetime, end: datetime, period: int
    ) -> dict[str, dict[str, dict[datetime, float]]]:
        """{variant: {series name: {time: value}}} over [start, end) in `period` seconds."""
        queries, names = [], {}
        for i, variant in enumerate(variants):
            for j, (name, (metric, stat, _)) in enumerate(SERIES.items()):
                query_id = f"v{i}s{j}"
                names[query_id] = (variant, name)
                dimensions = [
                    {"Name": "EndpointName", "Value": endpoint},
                    {"Name": "VariantName", "Value": variant},
                ]
                queries.append(
                    {
                        "Id": query_id,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": NAMESPACE,
                                "MetricName": metric,
                                "Dimensions": dimensions,
                            },
                            "Period": period,
                            "Stat": stat,
                        },
                    }
                )
        found: dict[str, dict[str, dict[datetime, float]]] = {v: {n: {} for n in SERIES} for v in variants}
        for start_at in range(0, len(queries), 500):  # GetMetricData takes 500 queries a call
            request = {
                "MetricDataQueries": queries[start_at : start_at + 500],
                "StartTime": start,
                "EndTime": end,
            }
            while True:
                answer = self.cloudwatch.get_metric_data(**request)
                for result in answer["MetricDataResults"]:
                    variant, name = names[result["Id"]]
                    factor = SERIES[name][2]
                    for moment, value in zip(result["Timestamps"], result["Values"], strict=True):
                        found[variant][name][moment] = value * factor
                if not answer.get("NextToken"):
                    break
                request["NextToken"] = answer["NextToken"]
        return found
