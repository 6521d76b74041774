"""Streaming classify (issue 27): peak memory at 10,000 vs 100,000 inputs, and what a kill + ``--resume`` costs.

Each run is a fresh ``python -m promptlearn classify`` process scoring with a tiny saved classifier (a 2-layer BERT
built here, saved with ``PromptClassifier.save``; ``--model-dir``) over generated CSV rows that each carry a 1 KB
passthrough column; its peak RSS is the child's ``ru_maxrss`` (``os.wait4``). Target: the peak at 100,000 inputs at
most 64 MB above the peak at 10,000. Resume overhead: an uninterrupted run's wall time against a run SIGKILLed
when half of its parts are written plus the ``--resume`` run that finishes it (both counted, start-ups included).

    python -m benchmarks.streaming --resume-rows 0 --save     # memory: 10,000 and 100,000 rows
    python -m benchmarks.streaming --sizes --resume-rows 5000 --save    # resume overhead on 5,000 rows
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "{{ text }} it was [MASK] ."
VERBALIZER = json.dumps({"negative": ["bad"], "positive": ["great"]})
WORDS = ["good", "bad", "great", "awful", "fine", "dull", "a", "movie", "film", "story", "plot", "acting"]


def build_model(folder: Path) -> tuple[Path, Path]:
    """The tests' tiny BERT and a classifier saved over it: ``(model folder, saved classifier folder)``."""
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_models import build_tiny_bert

    from promptlearn import PromptClassifier

    model = build_tiny_bert(folder / "bert")
    saved = folder / "saved"
    PromptClassifier(model=str(model), template=TEMPLATE, verbalizer=VERBALIZER).save(saved)
    return Path(model), saved


def write_input(path: Path, rows: int, width: int = 1024) -> Path:
    """``rows`` rows of ``id, text, pad``: a short text and a ``width``-character passthrough column."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "pad"])
        for i in range(rows):
            text = " ".join(WORDS[(i * 7 + j * 5) % len(WORDS)] for j in range(4 + i % 9))
            writer.writerow([i, text, (chr(97 + i % 26) * width)])
    return path


def classify(model: Path, saved: Path, source: Path, output: Path, *extra: str,
             kill_at_part: int | None = None) -> dict:
    """One ``promptlearn classify`` process: its wall time, peak RSS (MB) and exit status; SIGKILLed once the
    record of part ``kill_at_part`` exists when that is given."""
    argv = [sys.executable, "-m", "promptlearn", "-q", "classify", "--model-dir", str(saved), "--model", str(model),
            "--input", str(source), "--output", str(output), "--batch-size", "64", *extra]
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    if kill_at_part is not None:
        record = output.parent / f".{output.name}.parts" / f"part-{kill_at_part:06d}.json"
        while not record.exists() and process.poll() is None:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    error = process.stderr.read().decode() if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, -signal.SIGKILL):
        raise SystemExit(f"classify failed ({code}): {error}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit": code}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000], metavar="ROWS",
                        help="input sizes of the memory runs: two (none: no memory runs)")
    parser.add_argument("--resume-rows", type=int, default=20_000, help="rows of the resume runs (0: none)")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/streaming.json")
    args = parser.parse_args(argv)
    if len(args.sizes) not in (0, 2):
        parser.error("--sizes takes two sizes (or none)")
    saved_at = REPO / "benchmarks" / "results" / "streaming.json"
    result: dict = json.loads(saved_at.read_text()) if args.save and saved_at.is_file() else {}
    result.pop("environment", None)
    result["passthrough_bytes"] = 1024
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, saved = build_model(folder)
        if args.sizes:
            result["sizes"] = args.sizes
        for rows in args.sizes:
            source = write_input(folder / f"in-{rows}.csv", rows)
            run = classify(model, saved, source, folder / f"out-{rows}.csv")
            run["input_mb"] = round(source.stat().st_size / 2**20, 1)
            result[str(rows)] = run
            print(f"{rows:>7} rows ({run['input_mb']} MB): {run['seconds']} s, peak RSS {run['peak_rss_mb']} MB",
                  flush=True)
        if args.sizes:
            small, large = (result[str(n)]["peak_rss_mb"] for n in args.sizes)
            result["rss_growth_mb"] = round(large - small, 1)
            print(f"peak RSS growth {args.sizes[0]} -> {args.sizes[1]}: {result['rss_growth_mb']} MB (target <= 64)")
        if args.resume_rows:
            result["resume"] = resume_overhead(model, saved, folder, args.resume_rows)
    if args.save:
        from .common import environment, write_result

        command = "python -m benchmarks.streaming " + " ".join(argv or sys.argv[1:])
        result.update({"memory_command": command} if args.sizes else {})
        result.update({"resume_command": command} if args.resume_rows else {})
        result["environment"] = environment()
        write_result("streaming", result, command=command)
    return 0


def resume_overhead(model: Path, saved: Path, folder: Path, rows: int) -> dict:
    """An uninterrupted run against one killed when half its parts are written plus the --resume that ends it."""
    source = write_input(folder / "resume.csv", rows)
    plain = classify(model, saved, source, folder / "plain.csv")
    half = -(-rows // 1024) // 2  # of the parts of the default 1,024 rows: killed when this one is written
    killed = classify(model, saved, source, folder / "resumed.csv", kill_at_part=half)
    resumed = classify(model, saved, source, folder / "resumed.csv", "--resume")
    same = (folder / "plain.csv").read_bytes() == (folder / "resumed.csv").read_bytes()
    total = round(killed["seconds"] + resumed["seconds"], 2)
    print(f"resume, {rows} rows: uninterrupted {plain['seconds']} s; killed after part {half} at "
          f"{killed['seconds']} s + resumed {resumed['seconds']} s = {total} s; byte-identical: {same}")
    return {"rows": rows, "killed_after_part": half, "uninterrupted_s": plain["seconds"],
            "killed_s": killed["seconds"], "resumed_s": resumed["seconds"], "killed_plus_resumed_s": total,
            "overhead_s": round(total - plain["seconds"], 2), "byte_identical": same,
            "resumed_peak_rss_mb": resumed["peak_rss_mb"]}


def report_section(result: dict) -> list[str]:
    """The RESULTS.md section of ``benchmarks/results/streaming.json`` (for benchmarks/report.py)."""
    lines = ["## Streaming classify: memory and resume", ""]
    sizes = result.get("sizes") or []
    if len(sizes) == 2 and all(str(n) in result for n in sizes):
        lines += ["Peak RSS of a fresh `promptlearn classify` process (the child's `ru_maxrss`) scoring generated CSV "
                  "rows, each with a 1 KB passthrough column, with a tiny saved BERT classifier (`--model-dir`, "
                  "`--batch-size 64`, default chunks: 1,024 rows / 4 MiB), output CSV.", "",
                  "| inputs | input | wall time | peak RSS |", "| ---: | ---: | ---: | ---: |"]
        for n in sizes:
            run = result[str(n)]
            lines.append(f"| {n:,} | {run['input_mb']} MB | {run['seconds']} s | {run['peak_rss_mb']} MB |")
        growth = result["rss_growth_mb"]
        lines += ["", f"Growth {sizes[0]:,} → {sizes[1]:,} inputs: **{growth} MB** (target ≤ 64 MB: "
                      f"{'met' if growth <= 64 else 'missed'}).", ""]
    resume = result.get("resume")
    if resume:
        lines += [f"Resume, {resume['rows']:,} rows: uninterrupted {resume['uninterrupted_s']} s; SIGKILLed once part "
                  f"{resume['killed_after_part']} was written ({resume['killed_s']} s) + `--resume` "
                  f"({resume['resumed_s']} s) = **{resume['killed_plus_resumed_s']} s** (overhead "
                  f"{resume['overhead_s']} s, mostly the second process start); output byte-identical: "
                  f"{'yes' if resume['byte_identical'] else 'NO'}.", ""]
    env = result.get("environment", {})
    commands = [result[k] for k in ("memory_command", "resume_command") if result.get(k)] or [result.get("command")]
    lines.append(f"Commands: {', '.join(f'`{c}`' for c in commands)}. Environment: promptlearn "
                 f"{env.get('promptlearn')}, torch {env.get('torch')}, transformers {env.get('transformers')}, "
                 f"Python {env.get('python')}, {env.get('device')} ({env.get('cpu_count')} cores, "
                 f"{env.get('torch_threads')} torch threads).")
    return lines


if __name__ == "__main__":
    sys.exit(main())
