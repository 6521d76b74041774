"""Throughput of a PromptBank batch that mixes prompts against the same requests scored one prompt at a time.

Per-user prompts on one base model: ``n`` requests (LM-BFF SST-2 test sentences), each naming one of ``P``
continuous prompts drawn at random (seeded). *Mixed*: one ``predict_log_proba_rows`` call, rows of different
prompts sharing batches. *One prompt at a time*: the requests grouped by prompt, one call per prompt (its batches
hold only its own rows). Both give the same log-probabilities (the largest difference is recorded).
Prompts: ``soft`` (20 trainable input vectors) and ``deep`` (P-tuning v2, 10 key/value prefixes per layer),
freshly initialised with different seeds (training does not change the cost).

Run:  python -m benchmarks.prompt_bank [--model models/minilm-mlm] [--prompts 4 32] [--n 512] [--batch-size 32]
Writes benchmarks/results/prompt_bank.json; ``python -m benchmarks.report`` renders RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import environment, write_result
from promptlearn import PromptBank, PromptClassifier, load_model, tuning_config
from promptlearn.io.tasks import load_lmbff_task

REPO = Path(__file__).resolve().parent.parent


def _best_of(fn, repeats: int) -> tuple[float, object]:
    """(seconds of the fastest of ``repeats`` runs after one warm-up run, the last run's output)."""
    out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def measure(model: str, source: str, n_prompts: int, texts: list[str], batch_size: int, repeats: int) -> dict:
    loaded = load_model(model)
    bank = PromptBank(loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size, show_progress=False)
    options = {"prefix_length": 10} if source == "deep" else {"n_tokens": 20}
    for k in range(n_prompts):
        clf = PromptClassifier(loaded.model, "sst2/it_was", "sst2", tokenizer=loaded.tokenizer,
                               tuning=tuning_config(source, options), seed=k, show_progress=False)
        bank.add(f"p{k}", clf)
    rng = np.random.default_rng(0)
    names = [f"p{int(i)}" for i in rng.integers(n_prompts, size=len(texts))]

    def mixed():
        return bank.predict_log_proba_rows(texts, names)

    def one_at_a_time():
        out: list = [None] * len(texts)
        for name in sorted(set(names)):
            rows = [i for i, n in enumerate(names) if n == name]
            for i, values in zip(rows, bank.predict_log_proba_rows([texts[i] for i in rows], name)):
                out[i] = values
        return out

    with torch.inference_mode():
        mixed_s, mixed_out = _best_of(mixed, repeats)
        single_s, single_out = _best_of(one_at_a_time, repeats)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(mixed_out, single_out))
    return {"source": source, "n_prompts": n_prompts, "n_requests": len(texts), "batch_size": batch_size,
            "options": options, "mixed_ex_per_s": len(texts) / mixed_s,
            "one_at_a_time_ex_per_s": len(texts) / single_s, "speedup": single_s / mixed_s,
            "max_abs_difference": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/minilm-mlm",
                        help="a masked or causal LM (default: models/minilm-mlm, see `promptlearn adapt`)")
    parser.add_argument("--prompts", type=int, nargs="+", default=[4, 32])
    parser.add_argument("--sources", nargs="+", default=["soft", "deep"], choices=["soft", "ptuning", "deep"])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = args.model
    if not Path(model).is_absolute() and not Path(model).exists() and (REPO / model).exists():
        model = str(REPO / model)
    examples, _ = load_lmbff_task("sst2", "test")
    texts = [e["text"] for e in examples[:args.n]]
    rows = []
    for source in args.sources:
        for n_prompts in args.prompts:
            row = measure(model, source, n_prompts, texts, args.batch_size, args.repeats)
            print(row)
            rows.append(row)
    write_result("prompt_bank", {"model": args.model, "rows": rows, "environment": environment()})


if __name__ == "__main__":
    main()
