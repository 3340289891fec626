"""One construct for every sagewatch function: arm64, Python 3.12, the two layers, Powertools by env."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from sagewatch.stores.endpoints import MONITORED_TAG

ROOT = Path(__file__).resolve().parents[1]


def tracing_on(value: object) -> bool:
    """The context value tracing (X-Ray active tracing of every function): on unless false; anything
    but true or false stops the synthesis, naming the value."""
    if value is None or value == "":
        return True
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"the context value tracing must be true or false: got {value!r}")
    return text == "true"


class SagewatchFunction(Construct):
    """functions/<name>/handler.py as a Lambda with the deps and core layers. Context: tracing
    (`false`: no X-Ray traces, which cost $5 a million past the free tier)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        layers: list[lambda_.ILayerVersion],
        environment: dict[str, str],
        memory_mb: int = 1024,
        timeout: cdk.Duration = cdk.Duration.seconds(60),
        description: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        traced = tracing_on(self.node.try_get_context("tracing"))
        self.log_group = logs.LogGroup(
            self, "logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        # An own role rather than CDK's default, which attaches AWSLambdaBasicExecutionRole (logs on
        # every log group of the account): this one writes to the function's own log group only.
        self.role = iam.Role(
            self,
            "role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"sagewatch {name}: its own log group, and what its stack grants",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(ROOT / "functions" / name), exclude=["__pycache__", "*.pyc"]),
            layers=layers,
            memory_size=memory_mb,
            timeout=timeout,
            role=self.role,
            tracing=lambda_.Tracing.ACTIVE if traced else lambda_.Tracing.DISABLED,
            log_group=self.log_group,
            description=description or f"sagewatch {name}",
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": f"sagewatch-{name}",
                "POWERTOOLS_METRICS_NAMESPACE": "sagewatch",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **({} if traced else {"POWERTOOLS_TRACE_DISABLED": "true"}),
            },
        )

    def grant_objects(self, bucket: s3.IBucket, *, write: bool = False, delete: bool = False) -> None:
        """Read (and with `write`, put) the bucket's objects: the exact S3 actions sagewatch calls.

        CDK's bucket grants add wildcard actions (s3:GetObject*, s3:List*, s3:DeleteObject*); the
        code only gets, heads, lists, puts and presigns PUTs, so it is given just those.
        """
        actions = ["s3:GetObject", "s3:PutObject"] if write else ["s3:GetObject"]
        actions += ["s3:DeleteObject"] if delete else []
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects("*")])
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )

    def grant_endpoint_invocations(self, bucket: s3.IBucket) -> None:
        """Call SageMaker endpoints for explanations, and store them in the lake's explanations/ area.

        sagemaker:InvokeEndpoint only on this account's and region's endpoints tagged MONITORED_TAG=true
        (the owner tags the endpoints sagewatch may call), and sagewatch checks the tag itself before
        calling (services/explanations.py). The context explainEndpoints (names, comma-separated)
        narrows the grant to exactly those endpoints; without it, the endpoint is the one each model's
        configuration names at run time, so no ARN can be fixed at deploy time.
        """
        stack = cdk.Stack.of(self)
        named = str(self.node.try_get_context("explainEndpoints") or "")
        names = [name.strip().lower() for name in named.split(",") if name.strip()]  # ARNs are lower case
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"],
                resources=[
                    stack.format_arn(service="sagemaker", resource="endpoint", resource_name=name)
                    for name in names or ["*"]
                ],
                conditions={"StringEquals": {f"aws:ResourceTag/{MONITORED_TAG}": "true"}},
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[bucket.arn_for_objects("explanations/*")]
            )
        )

    def grant_endpoint_reads(self) -> None:
        """Read SageMaker endpoints' state and CloudWatch series (the IT side of a model).

        DescribeEndpoint only on endpoints tagged MONITORED_TAG=true (the user tags the endpoints
        sagewatch may look at); GetMetricData has no resource-level permissions, so Resource '*'.
        """
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:ListTags"],
                resources=[
                    cdk.Stack.of(self).format_arn(service="sagemaker", resource="endpoint", resource_name="*")
                ],
                conditions={"StringEquals": {f"aws:ResourceTag/{MONITORED_TAG}": "true"}},
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
