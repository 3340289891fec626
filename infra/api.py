"""The api stack: an HTTP API in front of the api function, which checks tokens itself.

An HTTP API (not a REST API): its `$default` stage serves at the root of the URL, so the URL is a
bare host as the arthurai SDK requires (it refuses base URLs with a path such as /prod), and it
costs less per request. Payload format 1.0 keeps the events the resolver and local runtime use.

Optional custom domain (context `apiDomainName` and `apiCertificateArn`, an ACM certificate in the
stack's region): mapped at the root, with no base path, because deepchecks-client joins /api/v1 to
the host's root and drops any path. HTTP APIs pass binary bodies (the Deepchecks reference upload is
multipart) base64-encoded without a binary media type setting.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigatewayv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.functions import SagewatchFunction
from infra.layers import layer
from infra.storage import StorageStack


@jsii.implements(apigatewayv2.IAccessLogSettings)
class _AccessLogs:
    def __init__(self, group: logs.ILogGroup) -> None:
        self._destination = apigatewayv2.LogGroupLogDestination(group)

    @property
    def destination(self) -> apigatewayv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        # HTTP API context variables (REST-only ones such as $context.resourcePath are refused)
        fields = {
            "requestId": "$context.requestId",
            "ip": "$context.identity.sourceIp",
            "requestTime": "$context.requestTime",
            "method": "$context.httpMethod",
            "path": "$context.path",
            "status": "$context.status",
            "protocol": "$context.protocol",
            "responseLength": "$context.responseLength",
            "latency": "$context.responseLatency",
            "integrationError": "$context.integrationErrorMessage",
        }
        return apigateway.AccessLogFormat.custom(json.dumps(fields))


class ApiStack(cdk.Stack):
    """Context: apiRateLimit / apiBurstLimit (requests per second, default 100 / 200)."""

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
        for name in ("models", "rules", "alerts", "notifications", "idempotency"):
            storage.tables[name].grant_read_write_data(function)
        storage.tables["tokens"].grant_read_data(function)  # tokens are made by the CLI, only read here
        # and presigned PUTs to drops/; deletes: a reference set replaced (DELETE .../reference_data)
        self.api_function.grant_objects(storage.data, write=True, delete=True)
        self.api_function.grant_endpoint_reads()  # /models/{id}/endpoint, endpoint metrics
        self.api_function.grant_endpoint_invocations(storage.data)  # an inference explained on demand
        storage.grant_queries(function)  # windows past the query API's limit run in Athena

        access_logs = logs.LogGroup(
            self,
            "access-logs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.api = apigatewayv2.HttpApi(
            self,
            "http-api",
            api_name="sagewatch",
            create_default_stage=False,
            description="sagewatch: every route goes to the api function",
            default_integration=integrations.HttpLambdaIntegration(
                "api",
                function,
                payload_format_version=apigatewayv2.PayloadFormatVersion.VERSION_1_0,
                timeout=cdk.Duration.seconds(29),
            ),
        )
        self.stage = apigatewayv2.HttpStage(
            self,
            "default-stage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            access_log_settings=_AccessLogs(access_logs),
            throttle=apigatewayv2.ThrottleSettings(
                rate_limit=float(self.node.try_get_context("apiRateLimit") or 100),
                burst_limit=int(self.node.try_get_context("apiBurstLimit") or 200),
            ),
        )
        cdk.CfnOutput(
            self,
            "api-url",
            value=self.api.api_endpoint,
            description="SAGEWATCH_URL, and the url for the arthurai SDK",
        )
        self.domain = self._custom_domain()

    def _custom_domain(self) -> apigatewayv2.DomainName | None:
        """The API at https://<apiDomainName>/ when the context names a domain and its certificate."""
        name = self.node.try_get_context("apiDomainName")
        certificate_arn = self.node.try_get_context("apiCertificateArn")
        if not name:
            return None
        if not certificate_arn:
            raise ValueError("context apiDomainName needs apiCertificateArn (an ACM certificate for it)")
        domain = apigatewayv2.DomainName(
            self,
            "domain",
            domain_name=name,
            certificate=acm.Certificate.from_certificate_arn(self, "certificate", certificate_arn),
        )
        # no api_mapping_key: the root of the domain, as deepchecks-client and the arthurai SDK need
        apigatewayv2.ApiMapping(self, "root-mapping", api=self.api, domain_name=domain, stage=self.stage)
        cdk.CfnOutput(
            self,
            "domain-target",
            value=domain.regional_domain_name,
            description=f"point a CNAME (or alias) for {name} here",
        )
        return domain
