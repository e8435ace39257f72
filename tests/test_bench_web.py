"""bench/web.py runs: a small organisation on SQLite, every page of its table requested, and
its last line the JSON object the benchmark promises (figures are not judged here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.web import BASELINES, PAGES

from .harness import REPO


def test_the_web_benchmark_runs_quick_on_sqlite_and_ends_with_its_json() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.web", "--quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["database"] == "sqlite" and figures["people"] == 300
    for key in (
        "web_p95_ms_max",
        "org_page_p95_ms",
        "report_org_ms",
        "org_page_vs_report",
        "report_html_p95_ms",
        "hr_loyalty_vs_report_html",
    ):
        assert figures[key] > 0, key
    names = [name for _path, _who, name in PAGES]
    assert set(BASELINES) <= set(names) and len(set(names)) == len(names)
    for name in names:
        assert 0 < figures[f"{name}_p50_ms"] <= figures[f"{name}_p95_ms"], name
    under_goal = [figures[f"{name}_p95_ms"] for name in names if name not in BASELINES]
    assert figures["web_p95_ms_max"] == max(under_goal)
