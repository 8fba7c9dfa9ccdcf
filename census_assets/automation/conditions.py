"""The automation condition carried by every asset below raw_census."""

import dagster as dg

# eager() alone ignores blocking checks: after a failed gate it would still request the asset
# below it on the next tick. Requiring the upstream blocking checks to have passed stops that.
GATED_EAGER = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()

