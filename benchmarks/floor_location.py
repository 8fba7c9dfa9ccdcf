"""The floor graph's code location: `dagster asset materialize -m benchmarks.floor_location`, with
FLOOR_SHAPE naming the JSON file benchmarks.floor.graph_shape wrote."""

import json
import os
from pathlib import Path

from benchmarks.floor import SHAPE_VARIABLE, floor_definitions

defs = floor_definitions(json.loads(Path(os.environ[SHAPE_VARIABLE]).read_text()))
