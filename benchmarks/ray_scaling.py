"""Distributed inference on Ray Data (issue 27): rows/s of 1 and 2 Ray workers against the local engine.

The same N rows (LM-BFF SST-2 test sentences, repeated up to N) are scored with the same saved zero-shot classifier:

- *local*: ``predict_proba`` in this process, as ``classify --engine local`` scores (torch's threads: every core),
  the model loaded before the clock starts;
- *ray, W workers*: as ``classify --engine ray --workers W`` runs: ``ray.data.read_csv`` (every column as text),
  then ``map_batches(ClassifierPredictor, concurrency=W, num_cpus=1, batch_size=4 x 16)`` on a local Ray of this
  machine's CPUs, the rows back in input order. Its rows/s is taken over the span in which the workers scored
  (the first batch's start to the last batch's end, clocked inside the workers), so that starting the workers and
  loading their models (a fixed cost, given apart as *end to end*) does not count.

Efficiency = rows/s(2 workers) / (2 x rows/s(1 worker)). Each worker gets one CPU and one torch thread; on a
2-core machine two workers share the cores with the driver (which reads and gathers the rows) and with anything
else running. Models: ``tiny`` (the tests' 2-layer BERT, ``sst2/it_was``) and ``smollm2`` (SmolLM2-135M-Instruct,
packaged; ``sst2/review``).

    flock /tmp/bench.lock python -m benchmarks.ray_scaling --model tiny --rows 16000 --save
    flock /tmp/bench.lock python -m benchmarks.ray_scaling --model smollm2 --rows 256 --save

Writes ``benchmarks/results/ray_scaling.json`` (one entry per model); :func:`report_section` renders it.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BATCH_SIZE = 16  # the CLI's default --batch-size; a worker gets BATCHES_PER_CALL of them at a time
PROBABILITIES = ["p(negative)", "p(positive)"]


def saved_classifier(name: str, folder: Path) -> tuple[Path, str | None]:
    """``(saved folder, model to pass to load())``: a zero-shot prompt over the tiny BERT or SmolLM2."""
    from promptlearn import PromptClassifier

    if name == "tiny":
        sys.path.insert(0, str(REPO / "tests"))
        from tiny_models import build_tiny_bert

        model = str(build_tiny_bert(folder / "bert"))  # saved by its path, which load() is given back
        PromptClassifier(model=model, template="sst2/it_was", verbalizer="sst2").save(folder / "saved")
        return folder / "saved", model
    PromptClassifier(model="smollm2", template="sst2/review", verbalizer="sst2_review").save(folder / "saved")
    return folder / "saved", None  # saved by its short name, loaded by it


def write_input(path: Path, rows: int) -> list[str]:
    """``rows`` SST-2 test sentences (repeated past 872) as a CSV of ``id,text``; the texts."""
    from promptlearn.io.tasks import load_lmbff_task

    examples, _ = load_lmbff_task("sst2", "test")
    texts = [examples[i % len(examples)]["text"] for i in range(rows)]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows([i, text] for i, text in enumerate(texts))
    return texts


def run_local(saved: Path, model: str | None, texts: list[str]) -> tuple[dict, np.ndarray]:
    """The local engine's rows/s with torch's own threads (every core), and with one thread (a worker's)."""
    import torch

    from promptlearn.integrations.ray import load_saved

    start = time.perf_counter()
    classifier = load_saved(saved, model=model, batch_size=BATCH_SIZE, device="cpu")
    classifier.predict_proba(texts[:2])  # the model loaded (on first use) and warm
    load = time.perf_counter() - start
    threads = torch.get_num_threads()
    start = time.perf_counter()
    probabilities = classifier.predict_proba(texts)
    seconds = time.perf_counter() - start
    torch.set_num_threads(1)
    start = time.perf_counter()
    classifier.predict_proba(texts)
    one_thread = time.perf_counter() - start
    torch.set_num_threads(threads)
    return {"rows_per_s": round(len(texts) / seconds, 1), "seconds": round(seconds, 2), "load_s": round(load, 2),
            "torch_threads": threads, "one_thread_rows_per_s": round(len(texts) / one_thread, 1)}, probabilities


def _timed_predictor() -> type:
    from promptlearn.integrations.ray import ClassifierPredictor

    class TimedPredictor(ClassifierPredictor):
        """The predictor, with each batch's start and end (wall clock) and the worker's pid."""

        def __call__(self, batch):
            start = time.time()
            scored = super().__call__(batch)
            scored["_start"], scored["_end"], scored["_pid"] = start, time.time(), os.getpid()
            return scored

    return TimedPredictor


def run_ray(ray, saved: Path, model: str | None, source: Path, workers: int) -> tuple[dict, np.ndarray]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from promptlearn.cli.ray_engine import BATCHES_PER_CALL

    start = time.perf_counter()
    convert = pcsv.ConvertOptions(column_types={"id": pa.string(), "text": pa.string()})
    ds = ray.data.read_csv(str(source), convert_options=convert, num_cpus=0)
    scored = ds.map_batches(_timed_predictor(), batch_format="pandas", batch_size=BATCH_SIZE * BATCHES_PER_CALL,
                            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                            fn_constructor_kwargs={"model_dir": str(saved), "model": model, "batch_size": BATCH_SIZE})
    frame = pd.concat(list(scored.iter_batches(batch_format="pandas", batch_size=None)), ignore_index=True)
    end_to_end = time.perf_counter() - start
    span = float(frame["_end"].max() - frame["_start"].min())
    assert list(frame["id"]) == [str(i) for i in range(len(frame))], "rows out of order"
    calls = frame.drop_duplicates(["_pid", "_start"])
    busy = (calls["_end"] - calls["_start"]).groupby(calls["_pid"]).sum()  # seconds each worker spent scoring
    return {"workers": workers, "rows_per_s": round(len(frame) / span, 1), "scoring_span_s": round(span, 2),
            "end_to_end_s": round(end_to_end, 2), "workers_used": int(frame["_pid"].nunique()),
            "busy_share": round(float(busy.mean()) / span, 2)}, frame[PROBABILITIES].to_numpy()


def measure(name: str, rows: int) -> dict:
    import ray

    load_before = round(os.getloadavg()[0], 2)  # what else ran on the machine (1-minute load average)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        saved, model = saved_classifier(name, folder)
        source = folder / "input.csv"
        texts = write_input(source, rows)
        local, expected = run_local(saved, model, texts)
        print(f"{name}, {rows} rows: local {local['rows_per_s']} rows/s ({local['torch_threads']} torch threads), "
              f"{local['one_thread_rows_per_s']} rows/s (1 thread)", flush=True)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        try:
            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True
            context.enable_progress_bars = False
            runs = []
            for workers in (1, 2):
                run, probabilities = run_ray(ray, saved, model, source, workers)
                run["max_abs_diff"] = float(np.abs(probabilities - expected).max())
                runs.append(run)
                print(f"  ray, {workers} worker(s): {run['rows_per_s']} rows/s over {run['scoring_span_s']} s of "
                      f"scoring (workers busy {run['busy_share']:.0%} of it), {run['end_to_end_s']} s end to end; "
                      f"max |dp| vs local {run['max_abs_diff']:.1e}", flush=True)
        finally:
            ray.shutdown()
    efficiency = runs[1]["rows_per_s"] / (2 * runs[0]["rows_per_s"])
    print(f"  efficiency rows/s(2) / (2 x rows/s(1)) = {efficiency:.2f}")
    return {"model": name, "rows": rows, "batch_size": BATCH_SIZE, "local": local, "ray": runs,
            "efficiency": round(efficiency, 2), "load_average_before": load_before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    parser.add_argument("--rows", type=int, default=16000, help="rows scored by every configuration")
    parser.add_argument("--save", action="store_true", help="add the figures to benchmarks/results/ray_scaling.json")
    args = parser.parse_args(argv)
    result = measure(args.model, args.rows)
    if args.save:
        from .common import RESULTS, environment, write_result

        saved_at = RESULTS / "ray_scaling.json"
        results = json.loads(saved_at.read_text()) if saved_at.is_file() else {}
        results.pop("command", None)
        result["command"] = "python -m benchmarks.ray_scaling " + " ".join(argv if argv is not None else sys.argv[1:])
        result["environment"] = environment()
        results[args.model] = result
        write_result("ray_scaling", results, command="python -m benchmarks.ray_scaling")
    return 0


def report_section(results: dict) -> list[str]:
    """The RESULTS.md section of ``benchmarks/results/ray_scaling.json`` (for benchmarks/report.py)."""
    lines = ["## Distributed inference on Ray Data (`classify --engine ray`)", "",
             "The same rows (LM-BFF SST-2 test sentences) scored with a saved zero-shot classifier: *local* is "
             "`predict_proba` in one process (every core as torch threads, model loaded first); *ray* is "
             "`ray.data.read_csv` → `map_batches(ClassifierPredictor, concurrency=W)` as `classify --engine ray "
             "--workers W` runs it, one CPU and one torch thread per worker, on a local Ray of this machine's 2 "
             "cores. Rows/s of ray: over the span the workers scored in (clocked inside them); *end to end* adds "
             "starting the workers and loading their models. Efficiency = rows/s(2) / (2 × rows/s(1)). "
             "*max |Δp|*: largest difference from the local probabilities. *load before*: the machine's 1-minute "
             "load average as the run started (2 cores shared with other work: the figures are noisy).", "",
             "| model | rows | local rows/s, 2 threads / 1 thread | 1 worker rows/s | 2 workers rows/s | efficiency | "
             "end to end, 1 / 2 workers | max \\|Δp\\| | load before |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    env = None
    for name in ("tiny", "smollm2"):
        result = results.get(name)
        if not result:
            continue
        one, two = result["ray"]
        diff = max(one["max_abs_diff"], two["max_abs_diff"])
        local = result["local"]
        lines.append(f"| {name} | {result['rows']:,} | {local['rows_per_s']} / {local['one_thread_rows_per_s']} | "
                     f"{one['rows_per_s']} | {two['rows_per_s']} | {result['efficiency']:.2f} | "
                     f"{one['end_to_end_s']} s / {two['end_to_end_s']} s | {diff:.1e} | "
                     f"{result['load_average_before']} |")
        env = result.get("environment", env)
    lines.append("")
    commands = [f"`flock /tmp/bench.lock {results[n]['command']}`" for n in ("tiny", "smollm2") if n in results]
    lines.append("Commands: " + "; ".join(commands) + ".")
    if env:
        lines[-1] += (f" Environment: promptlearn {env['promptlearn']}, torch {env['torch']}, transformers "
                      f"{env['transformers']}, Python {env['python']}, {env['device']} ({env['cpu_count']} cores).")
    return lines + [""]


if __name__ == "__main__":
    sys.exit(main())
