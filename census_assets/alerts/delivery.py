"""Delivering alerts: each one logged (the tick's log in the UI, and the process log under the
logger `census_assets.alerts` for whatever collects the daemon's logs), then sent to the
`notifier` resource (resources/notifier.py: a webhook, Slack, or a channel of your own)."""

import json
import logging
from collections.abc import Sequence

from census_assets.alerts.payloads import Alert
from census_assets.resources.notifier import AlertNotifier

ALERT_LOG = logging.getLogger("census_assets.alerts")


def deliver(context, notifier: AlertNotifier, alerts: Sequence[Alert]) -> list[str]:
    """Logs every alert and sends it to the notifier. A failed delivery is logged and not retried;
    after one, the rest of this tick's alerts are logged only, so a channel that hangs costs one
    timeout per tick, not one per alert. Returns the outcomes."""
    logs = (context.log, ALERT_LOG)
    outcomes, broken = [], None
    for alert in alerts:
        level = logging.ERROR if alert.severity == "ERROR" else logging.WARNING
        line = f"{alert.summary} | {json.dumps(alert.details(), sort_keys=True, default=str)}"
        for log in logs:
            log.log(level, line)
        if broken is not None:
            outcome, outcome_level = f"not sent: an earlier delivery in this tick failed ({broken})", logging.ERROR
        else:
            try:
                outcome, outcome_level = notifier.send(alert.payload()), logging.INFO
            except Exception as error:  # whatever the notifier raises: log it and keep going
                broken = f"{type(error).__name__}: {error}"
                outcome, outcome_level = f"alert delivery failed: {broken}", logging.ERROR
        for log in logs:
            log.log(outcome_level, outcome)
        outcomes.append(outcome)
    return outcomes
