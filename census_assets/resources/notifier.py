"""The `notifier` resource: where alerts go besides the log.

Two channels, each optional: a generic JSON webhook (CENSUS_ALERT_WEBHOOK_URL) and Slack through
dagster-slack (CENSUS_SLACK_CHANNEL + CENSUS_SLACK_TOKEN, the `slack` extra). The webhook URL and
the Slack token are secrets: definitions.py binds them as `dg.EnvVar`, so the UI shows only the
variables' names and the values are read where the sensor runs.
"""

import json

import dagster as dg
from pydantic import Field

from census_assets.settings import ALERT_WEBHOOK_URL, SLACK_CHANNEL, SLACK_TOKEN, setting_field

SLACK_API_URL = "https://slack.com/api/"
# Every delivery attempt is bounded: a channel that hangs costs at most this per alert and tick.
MAX_TIMEOUT_SECONDS = 30.0


class AlertDeliveryError(OSError):
    """At least one channel did not take the alert; the message says which and why (and what did)."""


def alert_text(alert: dict) -> str:
    """A chat message: the summary line, then the details as JSON."""
    summary = alert.get("summary") or f"census alert: {alert.get('kind', 'unknown')}"
    details = {k: v for k, v in alert.items() if k != "summary"}
    return f"{summary}\n```{json.dumps(details, indent=1, sort_keys=True, default=str)[:3500]}```"


class AlertNotifier(dg.ConfigurableResource):
    """Where alerts go besides the log: a webhook (JSON POST) and/or a Slack channel.

    Pluggable: bind a subclass that overrides `send(alert: dict) -> str` under `notifier`
    (e-mail, paging); the sensors log every alert whatever the notifier does, and a notifier that
    raises is logged as a failed delivery, not retried.
    """

    webhook_url: str = setting_field(ALERT_WEBHOOK_URL)
    timeout_seconds: float = Field(
        default=5.0,
        description=f"Seconds each delivery may take (connect, send, answer), at most {MAX_TIMEOUT_SECONDS:.0f}",
    )
    slack_channel: str = setting_field(SLACK_CHANNEL)
    slack_token: str = setting_field(SLACK_TOKEN)
    slack_api_url: str = Field(default=SLACK_API_URL, description="The Slack Web API's base URL")

    @property
    def timeout(self) -> float:
        return min(max(self.timeout_seconds, 0.1), MAX_TIMEOUT_SECONDS)

    @property
    def channels(self) -> list[str]:
        return [name for name, on in (("webhook", self.webhook_url), ("slack", self.slack_channel)) if on]

    def send(self, alert: dict) -> str:
        """Deliver the alert to every configured channel; returns what was done, for the log.
        Raises AlertDeliveryError naming each channel that failed (the others are still tried)."""
        if not self.channels:
            return "no alert channel configured (CENSUS_ALERT_WEBHOOK_URL, CENSUS_SLACK_CHANNEL): logged only"
        done, failed = [], []
        for channel in self.channels:
            try:
                done.append(self.post_webhook(alert) if channel == "webhook" else self.post_slack(alert))
            except Exception as error:  # any failure of one channel: report it, try the others
                failed.append(f"{channel} delivery failed: {type(error).__name__}: {error}")
        if failed:
            raise AlertDeliveryError("; ".join(failed + done))
        return "; ".join(done)

    def post_webhook(self, alert: dict) -> str:
        import urllib.request  # only when an alert is sent: loading the code location skips it

        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(alert, default=str).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        # An answer >= 400 raises HTTPError; no answer within the timeout raises TimeoutError.
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return f"posted to webhook: HTTP {response.status}"

    def post_slack(self, alert: dict) -> str:
        # dagster-slack (the `slack` extra) only when Slack is configured.
        from dagster_slack import SlackResource

        client = SlackResource(token=self.slack_token).get_client()
        # slack_sdk's WebClient: its API URL, a bounded timeout, and no retry that would double it.
        client.base_url = self.slack_api_url
        client.timeout = max(1, round(self.timeout))
        client.retry_handlers = []
        response = client.chat_postMessage(channel=self.slack_channel, text=alert_text(alert))
        return f"posted to Slack {self.slack_channel}: ts {response.get('ts')}"
