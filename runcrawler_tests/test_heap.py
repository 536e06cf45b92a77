"""The first run of a process leaves the loaded code out of Python's later collections.

In a fresh interpreter: this test session's process may have been frozen by another test.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import gc, json
from dagster import asset, materialize
from runcrawler_assets.defs.resources import ConfigResource

@asset
def probe(settings: ConfigResource) -> None:
    pass

def run():
    assert materialize([probe], resources={"settings": ConfigResource(variables={})}).success
    return gc.get_freeze_count()

before = gc.get_freeze_count()
first = run()
made_since = [[i] for i in range(50_000)]  # alive through the second run
second = run()
garbage = [[]]
garbage[0].append(garbage)  # a cycle made after the freeze
del garbage
print(json.dumps({"before": before, "first": first, "second": second,
                  "collected": gc.collect()}))
"""


def test_a_processs_first_run_freezes_its_loaded_code_once_and_later_garbage_is_collected():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["before"] == 0
    assert counts["first"] > 50_000  # Dagster, pandas, DuckDB and runcrawler, as loaded
    # once per process: the second run does not freeze what was made since the first (the
    # count moves a little as frozen objects are freed or their kind stops being tracked)
    assert abs(counts["second"] - counts["first"]) < 10_000
    assert counts["collected"] > 0
