"""The ingest, api and monitor stacks wire the declared queues, notifications and functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template
from tests.infra.synthesis import Synthesized, synthesize

from sagewatch.resources import DECLARATION


def queues_by_visibility(template: Template) -> dict[int, dict]:
    return {
        q["Properties"]["VisibilityTimeout"]: q["Properties"]
        for q in template.find_resources("AWS::SQS::Queue").values()
    }


@pytest.mark.parametrize(
    ("stack", "names"), [("ingest", {"ingest", "ingest-dlq"}), ("monitor", {"evaluate", "evaluate-dlq"})]
)
def test_queues_are_the_declared_ones_with_their_dead_letter_queues(
    templates: dict[str, Template], stack: str, names: set[str]
) -> None:
    template = templates[stack]
    declared = [q for q in DECLARATION.queues if q.name in names]
    assert len(template.find_resources("AWS::SQS::Queue")) == len(declared)
    for queue in declared:
        expected = {
            "VisibilityTimeout": queue.visibility_timeout_seconds,
            "SqsManagedSseEnabled": True,
            "MessageRetentionPeriod": 14 * 24 * 3600,
        }
        if queue.dead_letter:
            expected["RedrivePolicy"] = {
                "deadLetterTargetArn": Match.any_value(),
                "maxReceiveCount": queue.max_receives,
            }
        template.has_resource_properties("AWS::SQS::Queue", expected)
    # TLS only: every queue policy denies aws:SecureTransport=false
    for policy in template.find_resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" for s in statements)


def _notification_filters(template: Template) -> list[tuple]:
    configurations = [
        c
        for resource in template.find_resources("Custom::S3BucketNotifications").values()
        for c in resource["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    ]
    assert all(c["Events"] == ["s3:ObjectCreated:*"] for c in configurations)
    return sorted(
        tuple(
            sorted((r["Name"], r["Value"]) for r in c.get("Filter", {}).get("Key", {}).get("FilterRules", []))
        )
        for c in configurations
    )


def test_s3_notifications_match_the_declaration(templates: dict[str, Template]) -> None:
    expected = sorted(
        tuple(sorted((part, value) for part, value in (("prefix", n.prefix), ("suffix", n.suffix)) if value))
        for n in DECLARATION.notifications
    )
    assert _notification_filters(templates["ingest"]) == expected


def test_an_existing_capture_bucket_is_used_under_its_prefix(tmp_path: Path) -> None:
    custom = synthesize(
        tmp_path, captureBucket="my-endpoint-captures", capturePrefix="datacapture/", nag="false"
    )
    template = custom.template("ingest")
    assert len(template.find_resources("AWS::S3::Bucket")) == 0  # nothing new created
    capture = next(n for n in DECLARATION.notifications if n.bucket == "capture")
    filters = _notification_filters(template)
    assert (
        tuple(
            sorted(
                [("prefix", "datacapture/" + capture.prefix), ("suffix", capture.suffix)]
                if capture.suffix
                else [("prefix", "datacapture/" + capture.prefix)]
            )
        )
        in filters
    )
    notifications = template.find_resources("Custom::S3BucketNotifications")
    assert "my-endpoint-captures" in str(notifications)


def functions(template: Template) -> dict[str, dict]:
    return {
        f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]: f["Properties"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if "POWERTOOLS_SERVICE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})
    }


def test_every_function_is_arm64_python312_traced_with_both_layers_and_every_table_named(
    templates: dict[str, Template],
) -> None:
    found = {}
    for stack in ("ingest", "api", "monitor"):
        found.update(functions(templates[stack]))
    assert set(found) == {"sagewatch-ingest", "sagewatch-api", "sagewatch-scheduler", "sagewatch-evaluator"}
    table_vars = {t.env_var for t in DECLARATION.tables}
    for name, function in found.items():
        assert function["Architectures"] == ["arm64"], name
        assert function["Runtime"] == "python3.12", name
        assert function["Handler"] == "handler.handler", name
        assert function["TracingConfig"] == {"Mode": "Active"}, name
        assert len(function["Layers"]) == 2, name
        variables = function["Environment"]["Variables"]
        assert table_vars <= set(variables), name
        assert DECLARATION.bucket("data").env_var in variables, name
    assert DECLARATION.queue("evaluate").env_var in found["sagewatch-scheduler"]["Environment"]["Variables"]
    assert DECLARATION.bucket("capture").env_var in found["sagewatch-ingest"]["Environment"]["Variables"]
    # ingest runs for whole capture files (15 min); no function reserves concurrency, which would fail
    # the deploy in an account whose quota is 10 (the queue's maximum concurrency caps ingest instead)
    assert found["sagewatch-ingest"]["Timeout"] == 900
    assert not any("ReservedConcurrentExecutions" in f for f in found.values())
    # API Gateway gives up at 29 s: the api function must not outlive it
    assert found["sagewatch-api"]["Timeout"] <= 29


def test_queue_visibility_outlasts_the_function_that_consumes_it(templates: dict[str, Template]) -> None:
    for stack, function, queue in (
        ("ingest", "sagewatch-ingest", "ingest"),
        ("monitor", "sagewatch-evaluator", "evaluate"),
    ):
        timeout = functions(templates[stack])[function]["Timeout"]
        assert DECLARATION.queue(queue).visibility_timeout_seconds >= 6 * timeout


def test_sqs_event_sources_report_partial_batch_failures(templates: dict[str, Template]) -> None:
    templates["ingest"].has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 10,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            # messages wait in the queue beyond 5 at once, instead of being throttled into the DLQ
            "ScalingConfig": {"MaximumConcurrency": 5},
        },
    )
    # one model per evaluator invocation: a slow model cannot delay another's alerts; two at once
    templates["monitor"].has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 1,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 2},
        },
    )


def test_schedule_runs_the_scheduler_at_the_declared_rate(
    templates: dict[str, Template], tmp_path: Path
) -> None:
    minutes = DECLARATION.schedules[0].rate_minutes
    templates["monitor"].has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": f"rate({minutes} minutes)",
            "State": "ENABLED",
        },
    )
    hourly = synthesize(tmp_path, evaluateEveryMinutes="15", nag="false").template("monitor")
    hourly.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(15 minutes)"})


def test_alerts_are_sent_from_the_configured_verified_sender(tmp_path: Path) -> None:
    custom = synthesize(tmp_path, senderEmail="ml-alerts@acme.test", nag="false").template("monitor")
    custom.has_resource_properties("AWS::SES::EmailIdentity", {"EmailIdentity": "ml-alerts@acme.test"})
    evaluator = functions(custom)["sagewatch-evaluator"]
    assert evaluator["Environment"]["Variables"]["SAGEWATCH_SENDER"] == "ml-alerts@acme.test"
    # the identities' ARN follows the partition (aws-cn, aws-us-gov); mail from the sender only
    [send] = [
        statement
        for policy in custom.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Action"] == "ses:SendEmail"
    ]
    resource = json.dumps(send["Resource"])
    assert "AWS::Partition" in resource and "arn:aws:" not in resource and "identity/*" in resource
    assert send["Condition"] == {"StringEquals": {"ses:FromAddress": "ml-alerts@acme.test"}}


def test_an_already_verified_sender_is_used_not_created_again(tmp_path: Path) -> None:
    existing = synthesize(tmp_path, senderEmail="ml@acme.test", senderIdentity="existing", nag="false")
    assert existing.template("monitor").find_resources("AWS::SES::EmailIdentity") == {}


def test_a_kms_encrypted_capture_bucket_can_be_read(tmp_path: Path) -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    custom = synthesize(tmp_path, captureBucket="captures", captureKmsKeyArn=key, nag="false").template(
        "ingest"
    )
    assert "kms:Decrypt" in _actions(custom, "sagewatch-ingest")[key]


def test_api_serves_every_route_at_the_root_of_its_url_throttled_and_logged(
    templates: dict[str, Template],
) -> None:
    template = templates["api"]
    template.has_resource_properties("AWS::ApiGatewayV2::Api", {"ProtocolType": "HTTP"})
    # one catch-all route to the function, in the event format the resolver reads
    template.has_resource_properties("AWS::ApiGatewayV2::Route", {"RouteKey": "$default"})
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration",
        {"IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "1.0", "TimeoutInMillis": 29000},
    )
    # `$default`: no stage in the URL, so the arthurai SDK (which refuses URLs with a path) can use it
    stage = template.find_resources("AWS::ApiGatewayV2::Stage")
    (properties,) = [s["Properties"] for s in stage.values()]
    assert properties["StageName"] == "$default"
    assert properties["AutoDeploy"] is True
    assert properties["DefaultRouteSettings"] == {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200}
    logged = json.loads(properties["AccessLogSettings"]["Format"])
    assert {"$context.status", "$context.path", "$context.identity.sourceIp"} <= set(logged.values())
    assert not any("resourcePath" in value for value in logged.values())  # REST-only: HTTP APIs refuse it


def test_an_optional_custom_domain_maps_the_api_at_its_root(tmp_path: Path) -> None:
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    template = synthesize(
        tmp_path, apiDomainName="monitoring.acme.test", apiCertificateArn=arn, nag="false"
    ).template("api")
    template.has_resource_properties(
        "AWS::ApiGatewayV2::DomainName",
        {
            "DomainName": "monitoring.acme.test",
            "DomainNameConfigurations": [{"CertificateArn": arn, "EndpointType": "REGIONAL"}],
        },
    )
    (mapping,) = template.find_resources("AWS::ApiGatewayV2::ApiMapping").values()
    # no ApiMappingKey: deepchecks-client joins /api/v1 to the root and drops any base path
    assert "ApiMappingKey" not in mapping["Properties"]


def test_dead_letters_and_function_errors_raise_alarms(templates: dict[str, Template]) -> None:
    alarms = templates["monitor"].find_resources("AWS::CloudWatch::Alarm")
    descriptions = sorted(a["Properties"]["AlarmDescription"] for a in alarms.values())
    assert len([d for d in descriptions if "dead-letter" in d]) == 2
    assert len([d for d in descriptions if d.endswith("function failed")]) == 3
    templates["monitor"].resource_count_is("AWS::CloudWatch::Dashboard", 1)


def _actions(template: Template, service: str) -> dict[str, set[str]]:
    """The IAM actions of a function's role policy, keyed by the resource they apply to."""
    role = next(
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        == service
    )
    granted: dict[str, set[str]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for resource in resources:
                granted.setdefault(str(resource), set()).update(actions)
    return granted


def test_each_function_gets_only_the_access_its_code_uses(templates: dict[str, Template]) -> None:
    scheduler = _actions(templates["monitor"], "sagewatch-scheduler")
    scheduler_actions = set().union(*scheduler.values())
    assert "sqs:SendMessage" in scheduler_actions
    assert not any(a.startswith(("s3:", "ses:")) for a in scheduler_actions)
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & scheduler_actions

    evaluator = set().union(*_actions(templates["monitor"], "sagewatch-evaluator").values())
    assert "ses:SendEmail" in evaluator
    assert "s3:GetObject" in evaluator
    assert "s3:DeleteObject" not in evaluator
    # it reads the lake, and writes only the explanations it computes
    written = {
        r
        for r, actions in _actions(templates["monitor"], "sagewatch-evaluator").items()
        if "s3:PutObject" in actions
    }
    assert len(written) == 1 and "/explanations/*" in next(iter(written))

    api = set().union(*_actions(templates["api"], "sagewatch-api").values())
    assert not any(a.startswith(("ses:", "sqs:")) for a in api)
    tokens_table = next(
        r for r, actions in _actions(templates["api"], "sagewatch-api").items() if "tokens" in r.lower()
    )
    written = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    assert not written & _actions(templates["api"], "sagewatch-api")[tokens_table]  # the CLI makes tokens

    ingest = set().union(*_actions(templates["ingest"], "sagewatch-ingest").values())
    assert not any(a.startswith("ses:") for a in ingest)
    # no wildcard actions anywhere; the only unscoped resource is X-Ray's, which accepts nothing else
    for template, service in (
        (templates["monitor"], "sagewatch-scheduler"),
        (templates["monitor"], "sagewatch-evaluator"),
        (templates["api"], "sagewatch-api"),
        (templates["ingest"], "sagewatch-ingest"),
    ):
        granted = _actions(template, service)
        assert [a for actions in granted.values() for a in actions if "*" in a] == [], service
        unscoped = granted.get("*", set())
        # X-Ray's and CloudWatch GetMetricData's (endpoint metrics), which accept nothing else
        assert unscoped <= {
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "cloudwatch:GetMetricData",
        }, service
        # logs go to the function's own log group, not to every log group of the account
        logs = {r for r, actions in granted.items() if any(a.startswith("logs:") for a in actions)}
        assert len(logs) == 1 and "logs" in next(iter(logs)), service
    for template in (templates["monitor"], templates["api"], templates["ingest"]):
        for role in template.find_resources("AWS::IAM::Role").values():
            managed = json.dumps(role["Properties"].get("ManagedPolicyArns", []))
            assert "AWSLambdaBasicExecutionRole" not in managed or "BucketNotificationsHandler" in json.dumps(
                role
            )


def test_stack_outputs_tell_a_user_where_things_are(synthesized: Synthesized) -> None:
    outputs = {
        short: set(synthesized.template(short).find_outputs("*")) for short in ("api", "ingest", "monitor")
    }
    assert any(o.startswith("apiurl") for o in outputs["api"])
    assert any(o.startswith("capturebucketname") for o in outputs["ingest"])
    assert any(o.startswith("senderaddress") for o in outputs["monitor"])


def test_endpoint_reads_are_limited_to_endpoints_tagged_for_sagewatch(templates: dict[str, Template]) -> None:
    """The api and evaluator functions describe only endpoints tagged sagewatch:monitored=true."""
    for template, service in (
        (templates["api"], "sagewatch-api"),
        (templates["monitor"], "sagewatch-evaluator"),
    ):
        granted = _actions(template, service)
        assert "cloudwatch:GetMetricData" in granted["*"], service
        statements = [
            statement
            for policy in template.find_resources("AWS::IAM::Policy").values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Action"] == ["sagemaker:DescribeEndpoint", "sagemaker:ListTags"]
        ]
        assert statements and all(
            s["Condition"] == {"StringEquals": {"aws:ResourceTag/sagewatch:monitored": "true"}}
            for s in statements
        ), service
        assert "endpoint/*" in json.dumps(statements[0]["Resource"])
    ingest = set().union(*_actions(templates["ingest"], "sagewatch-ingest").values())
    assert not any(a.startswith(("sagemaker:", "cloudwatch:GetMetricData")) for a in ingest)


def test_endpoint_invocations_are_limited_to_endpoints_tagged_for_sagewatch(
    templates: dict[str, Template],
) -> None:
    """The api and evaluator functions invoke only endpoints tagged sagewatch:monitored=true (explanations)."""
    for template, service in (
        (templates["api"], "sagewatch-api"),
        (templates["monitor"], "sagewatch-evaluator"),
    ):
        assert any("sagemaker:InvokeEndpoint" in actions for actions in _actions(template, service).values())
        statements = [
            statement
            for policy in template.find_resources("AWS::IAM::Policy").values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if "sagemaker:InvokeEndpoint" in json.dumps(statement["Action"])
        ]
        assert statements and all(
            s["Action"] == "sagemaker:InvokeEndpoint"
            and s["Condition"] == {"StringEquals": {"aws:ResourceTag/sagewatch:monitored": "true"}}
            and "endpoint/*" in json.dumps(s["Resource"])
            for s in statements
        ), service
    ingest = set().union(*_actions(templates["ingest"], "sagewatch-ingest").values())
    scheduler = set().union(*_actions(templates["monitor"], "sagewatch-scheduler").values())
    assert "sagemaker:InvokeEndpoint" not in ingest | scheduler


def test_explain_endpoints_narrow_the_invoke_grant_to_the_named_endpoints(tmp_path: Path) -> None:
    synthesized = synthesize(tmp_path, explainEndpoints="Churn-Endpoint, fraud", nag="false")
    for short in ("api", "monitor"):
        resources = [
            json.dumps(statement["Resource"])
            for policy in synthesized.template(short).find_resources("AWS::IAM::Policy").values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Action"] == "sagemaker:InvokeEndpoint"
        ]
        assert resources and all(
            ":endpoint/churn-endpoint" in r and ":endpoint/fraud" in r and "endpoint/*" not in r
            for r in resources
        ), short
