"""Alerts: what failed or went stale, told to a person.

  payloads.py  what an alert says: a typed record per kind (failed run, failed check, freshness),
               built from Dagster's events; `payload()` is the JSON a channel receives
  delivery.py  every alert logged, then sent to the `notifier` resource (resources/notifier.py)
  sensors.py   the two alert sensors: every failed run; failed checks of runs that did not fail
               and freshness warnings and failures

Delivery is at least once: a sensor's cursor is saved with its tick's result, after delivery, so
a daemon stopped between the two sends the same alert again when it restarts; no alert is lost.
"""
