"""The monitor stack: the schedule, the evaluator fan-out, SES, a dashboard and alarms."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_ses as ses
from constructs import Construct

from infra import declared
from infra.functions import SagewatchFunction
from infra.ingest import IngestStack
from infra.layers import layer
from infra.storage import StorageStack
from sagewatch.resources import DECLARATION

DEFAULT_SENDER = "alerts@example.com"


class MonitorStack(cdk.Stack):
    """Context: senderEmail (the address alerts come from; verified in SES), evaluateEveryMinutes."""

    def __init__(
        self, scope: Construct, construct_id: str, *, storage: StorageStack, ingest: IngestStack, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        given = self.node.try_get_context("senderEmail")
        sender = given or DEFAULT_SENDER
        # An address (or its domain) already verified in SES cannot be created again (AlreadyExists):
        # -c senderIdentity=existing uses it as it is.
        # Without -c senderEmail no identity is made (example.com's could never be verified): alerts
        # are raised and sent to webhooks; emails fail, each saying so, until a sender is given.
        if given and (self.node.try_get_context("senderIdentity") or "create") != "existing":
            self.identity = ses.EmailIdentity(self, "sender", identity=ses.Identity.email(sender))
        self.queues = declared.queues(self, ("evaluate", "evaluate-dlq"))
        environment = {
            **storage.environment(),
            **{DECLARATION.queue(n).env_var: q.queue_name for n, q in self.queues.items()},
            "SAGEWATCH_SENDER": sender,
        }
        layers = [layer(self, "deps"), layer(self, "core")]
        self.scheduler = SagewatchFunction(
            self,
            "scheduler",
            name="scheduler",
            layers=layers,
            environment=environment,
            memory_mb=512,
            timeout=cdk.Duration.minutes(1),
            description="sagewatch scheduler: one evaluation per model",
        )
        self.evaluator = SagewatchFunction(
            self,
            "evaluator",
            name="evaluator",
            layers=layers,
            environment=environment,
            memory_mb=3008,
            timeout=cdk.Duration.minutes(10),
            description="sagewatch evaluator: one model's alert rules",
        )
        schedule = DECLARATION.schedules[0]
        minutes = int(self.node.try_get_context("evaluateEveryMinutes") or schedule.rate_minutes)
        events.Rule(
            self,
            "schedule",
            schedule=events.Schedule.rate(cdk.Duration.minutes(minutes)),
            targets=[targets.LambdaFunction(self.scheduler.function)],
        )
        self.evaluator.function.add_event_source(
            sources.SqsEventSource(
                self.queues["evaluate"],
                batch_size=1,
                report_batch_item_failures=True,
                # like ingest: models wait in the queue rather than throttling the account (quota 10)
                max_concurrency=int(self.node.try_get_context("evaluateConcurrency") or 2),
            )
        )
        storage.tables["models"].grant_read_data(self.scheduler.function)
        self.queues["evaluate"].grant_send_messages(self.scheduler.function)
        evaluator = self.evaluator.function
        storage.tables["models"].grant_read_write_data(evaluator)  # batch and default-rule states
        for name in ("rules", "alerts"):
            storage.tables[name].grant_read_write_data(evaluator)
        storage.tables["notifications"].grant_read_data(evaluator)
        self.evaluator.grant_objects(storage.data)
        self.evaluator.grant_endpoint_reads()  # rules on endpoint metrics
        self.evaluator.grant_endpoint_invocations(storage.data)  # explanations of sampled inferences
        # SES authorizes a send on the sender's identity (the address or its domain) and, while the
        # account is in the SES sandbox, on each verified recipient's identity too: every identity
        # of this account and region, for mail from the sender address only.
        evaluator.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ses:SendEmail"],
                resources=[self.format_arn(service="ses", resource="identity", resource_name="*")],
                conditions={"StringEquals": {"ses:FromAddress": sender}},
            )
        )
        self._dashboard(ingest)
        cdk.CfnOutput(
            self, "sender-address", value=sender if given else f"{sender} (none given: -c senderEmail=...)"
        )

    def _dashboard(self, ingest: IngestStack) -> None:
        dead_letters = [ingest.queues["ingest-dlq"], self.queues["evaluate-dlq"]]
        functions = [ingest.ingest.function, self.scheduler.function, self.evaluator.function]

        def counted(name: str, service: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="sagewatch",
                metric_name=name,
                dimensions_map={"service": service},
                statistic="Sum",
                period=cdk.Duration.minutes(5),
            )

        dashboard = cloudwatch.Dashboard(self, "dashboard", dashboard_name="sagewatch")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingested rows",
                left=[counted("InferencesIngested", "ingest"), counted("GroundTruthIngested", "ingest")],
            ),
            cloudwatch.GraphWidget(
                title="Rejected rows and unrouted files",
                left=[
                    counted("InferencesRejected", "ingest"),
                    counted("GroundTruthRejected", "ingest"),
                    counted("FilesUnrouted", "ingest"),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth",
                left=[q.metric_approximate_number_of_messages_visible() for q in dead_letters],
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Function errors", left=[f.metric_errors() for f in functions]),
            cloudwatch.GraphWidget(
                title="Alerts raised and rule errors",
                left=[
                    counted("AlertsRaised", "evaluator"),
                    counted("RuleErrors", "evaluator"),
                    counted("NotificationsPending", "evaluator"),
                ],
            ),
        )
        for queue, label in zip(dead_letters, ("ingest", "evaluate"), strict=True):
            cloudwatch.Alarm(
                self,
                f"{label}-dead-letters",
                metric=queue.metric_approximate_number_of_messages_visible(),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                alarm_description=f"messages in the {label} dead-letter queue: look at them and redrive",
            )
        for function, label in zip(functions, ("ingest", "scheduler", "evaluator"), strict=True):
            cloudwatch.Alarm(
                self,
                f"{label}-errors",
                metric=function.metric_errors(period=cdk.Duration.minutes(5)),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                alarm_description=f"the {label} function failed",
            )
