"""benchmarks/demo_cache.py on the tests' tiny Llama: the cached and recomputed k-shot scores agree, the
result file is written, and ``benchmarks.report`` renders it as a table row."""

from __future__ import annotations

import json

from benchmarks import common, demo_cache, report


def test_demo_cache_writes_result_and_report_renders_it(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    assert demo_cache.main(["--models", "tiny", "--queries", "6", "--demos", "2"]) == 0
    result = json.loads((tmp_path / "demo_cache.json").read_text())
    row = result["rows"][0]
    assert row["model"] == "tiny" and row["queries"] == 6 and row["demos_per_class"] == 2
    assert row["context_tokens"] > 0 and row["mean_query_tokens"] > 0
    assert row["max_abs_diff"] < 1e-4  # the cache changes the cost, not the scores
    assert row["s_per_example_cached"] > 0 and row["s_per_example_recomputed"] > 0
    assert result["command"].startswith("python -m benchmarks.") and "environment" in result

    section = "\n".join(report.demo_cache_section())
    assert section.startswith("## Shared-prefix cache")
    assert f"| tiny | 2 | {row['context_tokens']} | {row['mean_query_tokens']} | 6 |" in section
