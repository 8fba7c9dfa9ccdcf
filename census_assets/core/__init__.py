"""census_assets.core: the pipeline's logic without Dagster.

LightGBM's OpenMP runtime (libgomp, and scikit-learn's bundled copy) reads OMP_WAIT_POLICY once,
when the library loads; by default idle threads spin, and two fits side by side on a small machine
then fight for the cores. This package's __init__ runs before any of its modules, so setting the
variable here puts passive waiting in force for every LightGBM and scikit-learn import made by
core, or after any core import. Modules outside core import LightGBM through
census_assets.core.lightgbm_runtime. A user's explicit choice wins.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
