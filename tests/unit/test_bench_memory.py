"""A reduced run of the LoCoMo memory benchmark (bench/memory.py): one conversation, a few questions, both
embedders; it runs, reports every figure, and the figures are shares and times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = "/work/shared/data/locomo10.json"


@pytest.mark.skipif(not os.path.exists(DATA), reason=f"the LoCoMo data is not at {DATA}")
def test_the_memory_benchmark_runs_and_reports(tmp_path):
    report = tmp_path / "memory.md"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "memory.py"), "--data", DATA, "--conversations", "1",
                           "--questions", "12", "--report", str(report)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 0, done.stderr
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["embedder"] for r in runs] == ["none", "hash-v1"]
    for r in runs:
        assert r["conversations"] == 1 and r["questions"] == 12
        for share in ("context_spec", "context_recall", "search_all_terms", "search_any_term", "search_hybrid"):
            assert 0 <= r[share] <= 1
        assert 0 < r["context_recall_p50_ms"] <= r["context_recall_p99_ms"]
        assert r["recall_tokens_mean"] <= 2000
    text = report.read_text()
    assert text.startswith("# Memory quality on LoCoMo") and "evidence recall, query-driven context" in text
