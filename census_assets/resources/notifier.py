"""The `notifier` resource: where alerts go besides the log (CENSUS_ALERT_WEBHOOK_URL)."""

import json
import urllib.request

import dagster as dg


class AlertNotifier(dg.ConfigurableResource):
    """Where run-failure alerts go besides the log: a webhook (JSON POST) when webhook_url is set.

    Pluggable: bind a subclass that overrides `send(alert: dict) -> str` under `notifier`
    (chat, e-mail, paging); the sensor logs the alert whatever the notifier does.
    """

    webhook_url: str = ""
    timeout_seconds: float = 10.0

    def send(self, alert: dict) -> str:
        """Deliver the alert; returns what was done, for the log."""
        if not self.webhook_url:
            return "no webhook configured (CENSUS_ALERT_WEBHOOK_URL): logged only"
        request = urllib.request.Request(
            self.webhook_url,
            data=json.dumps(alert).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            return f"posted to webhook: HTTP {response.status}"
