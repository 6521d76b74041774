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
from promptlearn import PromptClassifier, ScoringOptions
from promptlearn.core.calibration import contextual_calibration
from promptlearn.io.sampling import subsample
from promptlearn.io.tasks import load_ag_news, load_lmbff_task
from promptlearn.core.metrics import classification_report

# task -> (data loader, [(template, verbalizer, after_mask, subset size or None), ...]).
# First the published cloze prompt (LM-BFF / PET). A causal LM reads text after [MASK] only with
# after_mask="score" (each label word is scored together with what follows it), which is what makes
# PET's "[MASK]: title description" patterns meaningful for it. Then the causal-friendly variant,
# whose label word comes last. For AG News, PET's patterns 0, 2 and 3 on a fixed 300-example subset: with
# a causal LM a pattern that starts with [MASK] (0, 1, 4, 5) scores each word together with the whole
# article, which is slow (0.4 examples/s here) and near chance (pattern 0: 26 %), so 1, 4 and 5 are left out.
_LMBFF = {task: (lambda task=task: load_lmbff_task(task, "test")) for task in ("sst2", "sst5", "mr", "cr", "subj",
                                                                                 "trec", "rte")}
CELLS = {
    "sst2": (_LMBFF["sst2"], [("sst2/it_was", "sst2", "score", None), ("sst2/review", "sst2_review", "drop", None)]),
    "sst5": (_LMBFF["sst5"], [("sst5/it_was", "sst5", "score", None), ("sst5/review", "sst5", "drop", None)]),
    "mr": (_LMBFF["mr"], [("mr/it_was", "mr", "score", None), ("mr/review", "mr_review", "drop", None)]),
    "cr": (_LMBFF["cr"], [("cr/it_was", "cr", "score", None), ("cr/review", "cr_review", "drop", None)]),
    "subj": (_LMBFF["subj"], [("subj/this_is", "subj", "score", None), ("subj/sentence", "subj", "drop", None)]),
    "trec": (_LMBFF["trec"], [("trec/mask_colon", "trec", "score", None),
                              ("trec/answer_type", "trec_answer_type", "drop", None)]),
    "agnews": (lambda: load_ag_news("test"), [(f"agnews/pet{i}", "agnews", "score", 300) for i in (0, 2, 3)]
               + [("agnews/article", "agnews", "drop", None)]),
    "rte": (_LMBFF["rte"], [("rte/lmbff", "rte", "score", None), ("rte/qa", "rte", "drop", None)]),
}


def run_cell(model: str, task: str, template: str, verbalizer: str, after_mask: str, limit: int | None, seed: int,
             batch_size: int, classifier_cache: dict) -> dict:
    loader = CELLS[task][0]
    examples, labels = loader()
    available = len(examples)
    if limit:
        examples, labels = subsample(examples, labels, limit, seed)
    if model not in classifier_cache:
        classifier_cache[model] = PromptClassifier(model, template, verbalizer,
                                                   scoring=ScoringOptions(batch_size=batch_size))
    clf = classifier_cache[model].set_params(template=template, verbalizer=verbalizer, scoring__after_mask=after_mask,
                                             calibrate=False)
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
        "after_mask": after_mask if clf.model_.kind == "causal" else None,
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
        for template, verbalizer, after_mask, cell_limit in CELLS[task][1]:
            limit = args.limit or cell_limit
            stem = template.replace("/", "__") + (f"__n{limit}" if limit else "")
            name = f"zero_shot/{args.model.replace('/', '_')}/{stem}"
            if (folder / f"{stem}.json").exists() and not args.force:
                print(f"skip {template} (done; --force to redo)")
                continue
            cell = run_cell(args.model, task, template, verbalizer, after_mask, limit, args.seed, args.batch_size, cache)
            cell["environment"] = environment()
            print(json.dumps({k: cell[k] for k in ("template", "n_examples", "accuracy", "calibrated_accuracy",
                                                   "examples_per_second")}))
            command = f"python -m benchmarks.zero_shot --model {args.model} --tasks {task}" + (
                f" --limit {args.limit} --seed {args.seed}" if args.limit else "") + " --force"
            write_result(name, cell, command=command)


if __name__ == "__main__":
    main()
