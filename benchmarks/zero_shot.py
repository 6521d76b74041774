"""Zero-shot test accuracy of shipped prompts, raw and with contextual calibration.

Each (task, template) cell scores the task's test set once; calibration reuses those scores and only
adds the content-free inputs, so raw and calibrated accuracy come from the same run. Finished cells
are kept in benchmarks/results/zero_shot/<model>/ and skipped on the next run (``--force`` redoes them).

Run:  python -m benchmarks.zero_shot [--model smollm2] [--tasks sst2 trec ...] [--limit N] [--force]
Then: python -m benchmarks.report   (regenerates benchmarks/RESULTS.md)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.common import RESULTS, environment, write_result
from promptlearn import PromptClassifier
from promptlearn.calibration import contextual_calibration
from promptlearn.data import load_ag_news, load_lmbff_task, subsample
from promptlearn.metrics import classification_report

# task -> (data loader, [(template, verbalizer), ...]): the LM-BFF / PET cloze prompt first, then the
# causal-friendly prompt whose label word comes last.
CELLS = {
    "sst2": (lambda: load_lmbff_task("sst2", "test"), [("sst2/it_was", "sst2"), ("sst2/review", "sst2_review")]),
    "sst5": (lambda: load_lmbff_task("sst5", "test"), [("sst5/it_was", "sst5"), ("sst5/review", "sst5_review")]),
    "mr": (lambda: load_lmbff_task("mr", "test"), [("mr/it_was", "mr"), ("mr/review", "mr_review")]),
    "cr": (lambda: load_lmbff_task("cr", "test"), [("cr/it_was", "cr"), ("cr/review", "cr_review")]),
    "subj": (lambda: load_lmbff_task("subj", "test"), [("subj/this_is", "subj"), ("subj/statement", "subj_statement")]),
    "trec": (lambda: load_lmbff_task("trec", "test"), [("trec/colon", "trec"), ("trec/question", "trec_question")]),
    "agnews": (lambda: load_ag_news("test"), [("agnews/pet0", "agnews"), ("agnews/topic", "agnews_topic")]),
    "rte": (lambda: load_lmbff_task("rte", "test"), [("rte/question", "rte"), ("rte/true_false", "rte_true_false")]),
}


def run_cell(model: str, task: str, template: str, verbalizer: str, limit: int | None, seed: int,
             batch_size: int, classifier_cache: dict) -> dict:
    loader = CELLS[task][0]
    examples, labels = loader()
    available = len(examples)
    if limit:
        examples, labels = subsample(examples, labels, limit, seed)
    if model not in classifier_cache:
        classifier_cache[model] = PromptClassifier(model, template, verbalizer, batch_size=batch_size)
    clf = classifier_cache[model].set_params(template=template, verbalizer=verbalizer, calibrate=False)
    truth = clf.verbalizer_.label_indices(labels)
    start = time.perf_counter()
    log_probs = clf.predict_log_proba(examples)
    seconds = time.perf_counter() - start
    prior = clf.content_free_prior()
    calibrated = contextual_calibration(log_probs, prior)
    raw = classification_report(truth, log_probs.argmax(axis=1), clf.verbalizer_.classes)
    cal = classification_report(truth, calibrated.argmax(axis=1), clf.verbalizer_.classes)
    return {
        "task": task, "template": template, "template_text": clf.template_.source, "verbalizer": verbalizer,
        "label_words": clf.verbalizer_.to_dict(), "model": model, "n_examples": len(examples),
        "n_available": available, "subset_seed": seed if limit else None,
        "accuracy": raw["accuracy"], "macro_f1": raw["macro_f1"],
        "calibrated_accuracy": cal["accuracy"], "calibrated_macro_f1": cal["macro_f1"],
        "content_free_prior": [round(float(p), 4) for p in prior],
        "predicted_class_share": np.bincount(log_probs.argmax(axis=1), minlength=len(prior)).tolist(),
        "seconds": round(seconds, 1), "examples_per_second": round(len(examples) / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--tasks", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--limit", type=int, help="score a fixed seeded subset of each test set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--force", action="store_true", help="recompute finished cells")
    args = parser.parse_args()
    folder = RESULTS / "zero_shot" / args.model.replace("/", "_")
    cache: dict = {}
    for task in args.tasks:
        for template, verbalizer in CELLS[task][1]:
            name = f"zero_shot/{args.model.replace('/', '_')}/{template.replace('/', '__')}"
            if (folder / f"{template.replace('/', '__')}.json").exists() and not args.force:
                print(f"skip {template} (done; --force to redo)")
                continue
            cell = run_cell(args.model, task, template, verbalizer, args.limit, args.seed, args.batch_size, cache)
            cell["environment"] = environment()
            print(json.dumps({k: cell[k] for k in ("template", "n_examples", "accuracy", "calibrated_accuracy",
                                                   "examples_per_second")}))
            command = f"python -m benchmarks.zero_shot --model {args.model} --tasks {task}" + (
                f" --limit {args.limit} --seed {args.seed}" if args.limit else "")
            write_result(name, cell, command=command)


if __name__ == "__main__":
    main()
