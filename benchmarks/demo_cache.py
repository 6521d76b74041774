"""Cost per example of a k-shot causal prompt with and without the shared-prefix (key-value) cache.

The same fixed demonstrations (``demo_selection="balanced"``) precede every query, so the causal scorer
computes their keys and values once and feeds only each query after them; without the cache every query
recomputes the whole prompt. Prints one JSON line per model: seconds per example both ways, the prompt's
context and query lengths in tokens, and the largest difference between the two sets of log-probabilities;
writes them to benchmarks/results/demo_cache.json, which ``python -m benchmarks.report`` renders in RESULTS.md.

Models: ``tiny`` (the tests' 2-layer, 32-wide Llama, 128-token window: 2-4 word texts, at most 2 demonstrations
per class), ``small`` (the same tokenizer, a 4-layer, 256-wide
Llama with a 1024-token window, random weights), ``smollm2`` (SmolLM2-135M-Instruct, LM-BFF SST-2 data).

Run:  python -m benchmarks.demo_cache [--models tiny small] [--queries 64] [--demos 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import environment, write_result
from promptlearn import DemonstrationOptions, PromptClassifier, ScoringOptions

TEMPLATE = "Review: {{ text }}\nSentiment: [MASK]"


def _synthetic(n: int, seed: int, length: tuple[int, int]) -> tuple[list[str], list[str]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import tiny_models

    rng = random.Random(seed)
    words = tiny_models._CONTENT_WORDS + tiny_models._FUNCTION_WORDS
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(*length))) for _ in range(n)]
    return texts, [rng.choice(["negative", "positive"]) for _ in range(n)]


def _small_llama(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from transformers import LlamaConfig, LlamaForCausalLM

    import tiny_models

    tok = tiny_models.make_llama_tokenizer(model_max_length=1024)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=4, intermediate_size=1024, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    return tiny_models._save(LlamaForCausalLM(cfg), tok, folder)


def measure(name: str, n_queries: int, demos: int, batch_size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        if name == "smollm2":
            from promptlearn.io.tasks import load_lmbff_task

            pool_x, pool_y = load_lmbff_task("sst2", "train")
            queries = [e["text"] for e in load_lmbff_task("sst2", "test")[0][:n_queries]]
            model, verbalizer = "smollm2", {"negative": ["negative"], "positive": ["positive"]}
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            import tiny_models

            folder = Path(tmp) / "m"
            model = str(tiny_models.build_tiny_llama(folder) if name == "tiny" else _small_llama(folder))
            length = (2, 4) if name == "tiny" else (12, 24)  # the tiny model's window is 128 tokens
            demos = min(demos, 2) if name == "tiny" else demos
            pool_x, pool_y = _synthetic(32, 0, length)
            queries = _synthetic(n_queries, 1, length)[0]
            verbalizer = {"negative": ["bad"], "positive": ["great"]}
        clf = PromptClassifier(model, TEMPLATE, verbalizer, show_progress=False,
                               demonstrations=DemonstrationOptions(k=demos, pool=(pool_x, pool_y), selection="balanced"),
                               scoring=ScoringOptions(batch_size=batch_size))
        scorer = clf.scorer_
        prompt = clf.render_prompts(queries[:1])[0][0]
        context = len(scorer._context_ids(scorer._context_text(prompt)))
        total = [len(scorer._prefix_ids([p], [10**6], ["x"])[0][0]) for p in clf.render_prompts(queries)[0]]
        result = {"model": name, "queries": len(queries), "demos_per_class": demos, "batch_size": batch_size,
                  "context_tokens": context, "mean_query_tokens": round(float(np.mean(total)) - context, 1),
                  "threads": torch.get_num_threads()}
        log_probs = {}
        for cached in (True, False, True, False):  # interleaved, best of two each
            scorer.prefix_cache = cached
            start = time.perf_counter()
            log_probs[cached] = clf.predict_log_proba(queries)
            seconds = (time.perf_counter() - start) / len(queries)
            key = "s_per_example_cached" if cached else "s_per_example_recomputed"
            result[key] = round(min(result.get(key, seconds), seconds), 5)
        result["speed_up"] = round(result["s_per_example_recomputed"] / result["s_per_example_cached"], 2)
        result["max_abs_diff"] = float(np.abs(log_probs[True] - log_probs[False]).max())
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "small"], choices=("tiny", "small", "smollm2"))
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--demos", type=int, default=4, help="demonstrations per class (default 4: an 8-shot prompt)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        rows.append(measure(name, args.queries, args.demos, args.batch_size))
        print(json.dumps(rows[-1]), flush=True)
    write_result("demo_cache", {"rows": rows, "environment": environment()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
