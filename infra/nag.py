"""cdk-nag AwsSolutions findings that sagewatch accepts, each with the reason it is safe.

Everything not listed here fails `tests/infra` (zero unsuppressed errors). Suppressions are
per stack and, for IAM5, per wildcard pattern, so a new wildcard still fails the check.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import NagPackSuppression, NagSuppressions

_GRANT_WILDCARDS = [
    # <table.Arn>/index/* and <bucket.Arn>/*, or the same through the storage stack's exports
    {
        "regex": "/^Resource::(<[A-Za-z0-9]+\\.Arn>|sagewatch-storage:ExportsOutputFnGetAtt[A-Za-z0-9]+)(/index)?/\\*$/"
    },
    {"regex": "/^Resource::arn:<AWS::Partition>:s3:::[^*]+/\\*$/"},
]

ACCEPTED = [
    NagPackSuppression(
        id="AwsSolutions-L1",
        reason="Runtime pinned to python3.12: the deps layer's wheels are built for exactly that ABI "
        "(infra/layers.py); moving the runtime means rebuilding the layer, done deliberately.",
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM4",
        reason="Only CDK's own BucketNotificationsHandler (a singleton Lambda that configures the S3 "
        "notifications at deploy time) keeps AWSLambdaBasicExecutionRole; sagewatch's functions have "
        "their own roles, writing to their own log groups (infra/functions.py).",
        applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="Resource wildcards scoped to one table's indexes (CDK's grantReadWriteData) or one "
        "bucket's objects (SagewatchFunction.grant_objects); actions are never wildcards.",
        applies_to=_GRANT_WILDCARDS,
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="s3:PutObject under the lake's explanations/ area only: the explanations the evaluator and "
        "the api compute (services/explanations.py), one object per run.",
        applies_to=[
            {
                "regex": "/^Resource::(<[A-Za-z0-9]+\\.Arn>|sagewatch-storage:ExportsOutputFnGetAtt[A-Za-z0-9]+)"
                "/explanations/\\*$/"
            }
        ],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) and CloudWatch GetMetricData "
        "(endpoint metrics) accept only Resource '*'.",
        applies_to=["Resource::*"],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="sagemaker:DescribeEndpoint and sagemaker:InvokeEndpoint (explanations) on this account's "
        "endpoints, conditioned on the tag sagewatch:monitored=true: the user tags the endpoints sagewatch "
        "may describe and call (the endpoint is named at run time).",
        applies_to=["Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:endpoint/*"],
    ),
    NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="ses:SendEmail on this account's SES identities, with ses:FromAddress pinned to the "
        "sender: in the SES sandbox the recipients' identities are authorized too (infra/monitor.py).",
        applies_to=["Resource::arn:<AWS::Partition>:ses:<AWS::Region>:<AWS::AccountId>:identity/*"],
    ),
]

API_ACCEPTED = [
    NagPackSuppression(
        id="AwsSolutions-APIG4",
        reason="Authorization is in the function, before routing: hashed bearer tokens in DynamoDB "
        "with a role per route (the arthurai / deepchecks clients send these tokens).",
    ),
]


def suppress(stack: cdk.Stack, api: bool = False) -> None:
    """Attach the accepted findings to `stack` (and the API-only ones when `api`)."""
    NagSuppressions.add_stack_suppressions(stack, ACCEPTED + (API_ACCEPTED if api else []), True)
