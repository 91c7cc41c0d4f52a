"""bench/journal_schemas.py end to end on the run's PostgreSQL: both passes measured, with and without the
driver-cursor statements, over the lanes asked for, and the pass after a restart when asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("options", [[], ["--plain", "--lanes", "2", "--restart"]])
def test_the_journal_benchmark_measures_both_passes(postgres_url: str, options: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "journal_schemas.py"), "--accounts", "6", "--jobs", "150",
         *options],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["prepared"] is ("--plain" not in options)
    assert result["lanes"] == (2 if options else 15)
    first, later = result["first_pass"], result["later_jobs"]
    assert first["jobs"] == 6 and later["jobs"] == 150
    assert first["client_cpu_ms_per_job"] > 0 and first["postgres_cpu_ms_per_job"] >= 0
    # /proc counts CPU in clock ticks (10 ms): 6 jobs may fall under one of PostgreSQL's, 150 cannot
    assert later["client_cpu_ms_per_job"] > 0 and later["postgres_cpu_ms_per_job"] > 0
    if "--restart" in options:  # every account once more, over new connections
        assert result["restart_pass"]["jobs"] == 6 and result["restart_pass"]["client_cpu_ms_per_job"] > 0
    else:
        assert "restart_pass" not in result
