"""The api stack: API Gateway (REST) in front of the api function, which checks tokens itself."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.functions import SagewatchFunction
from infra.layers import layer
from infra.storage import StorageStack


class ApiStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, storage: StorageStack, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.api_function = SagewatchFunction(
            self,
            "api",
            name="api",
            layers=[layer(self, "deps"), layer(self, "core")],
            environment=storage.environment(),
            memory_mb=1769,
            timeout=cdk.Duration.seconds(29),
            description="sagewatch REST API: models, data, queries, alerting",
        )
        function = self.api_function.function
        for name in ("models", "tokens", "rules", "alerts", "notifications", "idempotency"):
            storage.tables[name].grant_read_write_data(function)
        self.api_function.grant_objects(storage.data, write=True)  # and presigned PUTs to drops/

        access_logs = logs.LogGroup(
            self,
            "access-logs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.api = apigateway.LambdaRestApi(
            self,
            "rest-api",
            handler=function,
            proxy=True,
            rest_api_name="sagewatch",
            binary_media_types=["multipart/form-data", "application/octet-stream"],
            cloud_watch_role=True,
            deploy_options=apigateway.StageOptions(
                stage_name="prod",
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                tracing_enabled=True,
                throttling_rate_limit=float(self.node.try_get_context("apiRateLimit") or 100),
                throttling_burst_limit=int(self.node.try_get_context("apiBurstLimit") or 200),
            ),
        )
        cdk.CfnOutput(self, "api-url", value=self.api.url)
