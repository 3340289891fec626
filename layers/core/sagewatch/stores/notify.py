"""Sending alerts: email through SES, JSON to webhooks (Slack-compatible `text`)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from sagewatch import aws
from sagewatch.alerting.types import Alert, NotificationConfig
from sagewatch.schema import Model
from sagewatch.webhooks import WebhookRefused, check_resolved

DEFAULT_SENDER = "alerts@sagewatch.local"
WEBHOOK_ATTEMPTS = 3


class NotificationFailed(Exception):
    """A send failed; the notification stays pending and is retried on the next run."""


def sender_address() -> str:
    """The address alerts are emailed from: SAGEWATCH_SENDER, else DEFAULT_SENDER."""
    return os.environ.get("SAGEWATCH_SENDER", DEFAULT_SENDER)


def subject(alert: Alert, model: Model) -> str:
    """An alert email's subject: severity, model and rule."""
    return f"[sagewatch] {alert.severity.upper()}: {model.display_name or model.partner_model_id} - {alert.rule_name}"


def body(alert: Alert, model: Model) -> str:
    """An alert email's text: message, model, rule, value against threshold, window, where to act on it."""
    where = (
        f"batch {alert.batch_id}"
        if alert.batch_id
        else f"{alert.window_start:%Y-%m-%d %H:%M} to {alert.window_end:%Y-%m-%d %H:%M} UTC"
        if alert.window_start and alert.window_end
        else "the latest data"
    )
    return "\n".join(
        [
            alert.message,
            "",
            f"model:     {model.display_name or model.partner_model_id} ({model.partner_model_id}, id {model.id})",
            f"rule:      {alert.rule_name} ({alert.severity})",
            f"value:     {alert.metric_value:.6g} ({'above' if alert.bound == 'upper' else 'below'} "
            f"the threshold {alert.threshold:.6g})",
            f"window:    {where}",
            "",
            f"See it:    GET /api/v3/alerts/{alert.id}",
            f'Acknowledge: PATCH /api/v3/alerts/{alert.id} {{"status": "acknowledged"}}',
        ]
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook's answer is final: a redirect could point the call at a private address."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _post_json(url: str, payload: dict[str, Any]) -> None:
    try:
        check_resolved(url)
    except WebhookRefused as refused:
        raise NotificationFailed(f"webhook refused: {refused}") from None
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with _OPENER.open(request, timeout=10) as response:
            if response.status >= 300:
                raise NotificationFailed(f"webhook answered {response.status}")
    except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx, 5xx
        raise NotificationFailed(f"webhook answered {error.code}") from None


class Notifier:
    """Delivers alerts: emails through SES, JSON POSTs to webhooks (tried WEBHOOK_ATTEMPTS times)."""

    def __init__(
        self,
        ses: Any = None,
        sender: str | None = None,
        post: Callable[[str, dict[str, Any]], None] = _post_json,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ses = ses
        self.sender = sender or sender_address()
        self.post = post
        self.pause = pause

    @property
    def ses(self) -> Any:
        """The SES client given, else sagewatch.aws's."""
        return self._ses or aws.client("ses")

    def send(self, config: NotificationConfig, alert: Alert, model: Model) -> None:
        """Deliver one alert to one destination; NotificationFailed when it could not."""
        if config.type == "email":
            try:
                self.ses.send_email(
                    Source=self.sender,
                    Destination={"ToAddresses": [config.destination]},
                    Message={
                        "Subject": {"Data": subject(alert, model)},
                        "Body": {"Text": {"Data": body(alert, model)}},
                    },
                )
            except Exception as error:  # botocore's errors and connection failures alike
                raise NotificationFailed(f"SES: {error}") from error
            return
        payload = {
            "text": f"{subject(alert, model)}\n{alert.message}",
            "alert": json.loads(alert.model_dump_json()),
        }
        for attempt in range(WEBHOOK_ATTEMPTS):
            try:
                self.post(config.destination, payload)
                return
            except (OSError, urllib.error.URLError, NotificationFailed) as error:
                if attempt == WEBHOOK_ATTEMPTS - 1:
                    raise NotificationFailed(f"webhook: {error}") from error
                self.pause(0.5 * 2**attempt)
