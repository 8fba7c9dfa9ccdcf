"""The benchmark runs (quickly, without the slow reference CV) so it cannot rot."""

import json
import subprocess
import sys


def test_bench_prints_one_json_line_with_every_stage():
    completed = subprocess.run(
        [sys.executable, "-m", "census_assets.bench", "--no-reference", "--no-cli"],
        capture_output=True, text=True, timeout=600, check=True,
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert set(report["ours"]) == {"clean", "features", "cv", "final_fit"}
    assert report["scale"] == 1 and report["rows"] == 32561 and 0.825 <= report["cv_mean"] <= 0.835
    assert all(stage["peak_rss_mib"] > 0 for stage in report["ours"].values())
