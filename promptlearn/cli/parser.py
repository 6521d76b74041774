"""The ``promptlearn`` argument parser: every subcommand, its options and examples."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from typing import Any

from ..models.loader import DTYPES
from ..tuning import LEARNING_RATES
from .export import add_export_parser
from .options import (DTYPE_HELP, add_chunk_options, add_data_options, add_label_map, add_prompt_options,
                      checkpoint_interval, keep_margin, non_negative_int, positive_int)
from .predict import run_classify, run_evaluate
from .ray_engine import gpus_per_worker
from .templates import run_templates
from .tuning_flags import add_tuning_flags
from .sample import run_sample
from .train import run_adapt, run_search, run_train

EPILOG_CLASSIFY = """examples:
  promptlearn classify --template sst2/review --text "A gorgeous, witty film."
  promptlearn classify --model ./my-roberta --template sst2/it_was --verbalizer sst2 --input reviews.csv \\
      --column text=review --output predictions.csv --calibrate
  cat texts.jsonl | promptlearn classify --template agnews/article --input - --format jsonl
  promptlearn classify --engine ray --workers 4 --model-dir runs/sst2 --input reviews.parquet \\
      --output scored.parquet          # Ray Data workers (pip install 'promptlearn[ray]'); --address: a cluster
"""

EPILOG_TRAIN = """examples:
  promptlearn train --model ./my-mlm --template sst2/it_was --data ../shared/data/lm-bff/k-shot/SST-2/16-13 \\
      --output runs/sst2-13 --learning-rate 1e-4 --max-steps 200 --eval-every 20
  promptlearn evaluate --model-dir runs/sst2-13 --data ../shared/data/lm-bff/k-shot/SST-2/16-13
  promptlearn train ... --output runs/sst2-13 --resume        # after an interruption
  promptlearn -q train --template sst2/review --train labelled.csv --dev dev.csv --label-map 0=negative,1=positive \\
      --k 16 --seed 13 --output runs/k16-13 --max-steps 40    # 16 per class drawn from labelled.csv, no progress
  promptlearn train --model ./my-mlm --template sst2/it_was --template sst2/review --ensemble weighted \\
      --data ../shared/data/lm-bff/k-shot/SST-2/16-13 --output runs/sst2-pet --max-steps 200
  promptlearn train ... --template A --template B --unlabeled unlabelled.csv --ipet-generations 2 --distill \\
      --student finetune --output runs/ipet-student     # iPET, then distil into one sequence classifier
  promptlearn train --model ./my-mlm --template "[SOFT:4] {{ text }} [SOFT:2] [MASK]." --verbalizer sst2 \\
      --source soft --soft-init label_words --data sst2 --output runs/sst2-soft   # prompt tuning (base frozen)
  promptlearn train ... --source deep --prefix-length 16 --readout linear --output runs/sst2-deep  # P-tuning v2
  promptlearn train ... --source lora --lora-r 8 --output runs/sst2-lora       # LoRA through PEFT
"""

EPILOG_EVALUATE = """examples:
  promptlearn evaluate --template sst2/review --data ../shared/data/lm-bff/k-shot/SST-2/16-13
  promptlearn evaluate --template trec/answer_type --data trec --limit 200 --seed 0 --output report.json
  promptlearn evaluate --template sst2/review --data labelled.csv --label-map 0=positive,1=negative \\
      --output predictions.csv      # per-example raw and calibrated predictions, figures in predictions.metrics.json
  promptlearn evaluate --template sst2/review --verbalizer '{"negative": ["bad"], "positive": ["good"]}' --data sst2
  promptlearn evaluate --template sst2/review --data labelled.csv --column text=review --label-column stars
"""


AFTER_VERB = "_after_verb_"  # where a subcommand's copy of a global option stores (merged by _Parser)


class _Parser(argparse.ArgumentParser):
    """The top-level parser. Its options (-v, --version, ...) are global: every subcommand has a copy, so they
    work after the verb too (``promptlearn evaluate -v``; see :func:`_share_global_options`). A count adds up
    over both places (``-v evaluate -v`` is ``-vv``); any other value given after the verb wins."""

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        actions = {action.dest: action for action in self._actions}
        for key in [key for key in vars(namespace) if key.startswith(AFTER_VERB)]:
            dest, value = key[len(AFTER_VERB):], getattr(namespace, key)
            delattr(namespace, key)
            if isinstance(actions.get(dest), argparse._CountAction):
                value += getattr(namespace, dest, None) or 0
            setattr(namespace, dest, value)
        return namespace, extras


def _share_global_options(parser: argparse.ArgumentParser, commands: Any) -> None:
    """Copy the top-level options (all but --help) into every subcommand, under "global options" in its --help. A copy stores under ``AFTER_VERB + dest`` with
    no default, so an option given only before the verb keeps its value; an option string a subcommand already
    uses stays the subcommand's own."""
    shared = [action for action in parser._actions
              if action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))]
    done: set[int] = set()
    for name, sub in commands.choices.items():
        if id(sub) in done:
            continue
        done.add(id(sub))
        group = sub.add_argument_group("global options (also accepted before the command)")
        for action in shared:
            strings = [string for string in action.option_strings if string not in sub._option_string_actions]
            if not strings:
                continue
            twin = copy.copy(action)
            twin.option_strings, twin.dest, twin.default = strings, AFTER_VERB + action.dest, argparse.SUPPRESS
            twin.metavar = action.metavar or action.dest.upper()
            group._add_action(twin)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="promptlearn", description="Prompt-based zero- and few-shot text classification.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress lines or bars (training's step lines included): warnings, errors and "
                             "results only")
    parser.add_argument("--version", action="version", version=f"promptlearn {_version()}")
    # plain parsers for the subcommands: the global options given after the verb are merged by _Parser alone
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=argparse.ArgumentParser)
    commands.required = True

    classify = commands.add_parser("classify", help="classify texts with a prompt",
                                   description="Classify texts zero-shot: fill the template's [MASK] with each "
                                               "class's label words and report the most probable class.",
                                   epilog=EPILOG_CLASSIFY, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prompt_options(classify, model_dir="a classifier saved by `promptlearn train` (instead of --template and "
                                            "--verbalizer, as for evaluate; --model replaces its saved model)")
    classify.set_defaults(model=None)  # as evaluate's: a --model given replaces a --model-dir's saved one
    add_data_options(classify)
    source = classify.add_argument_group("texts")
    source.add_argument("--text", action="append", default=[], help="a text to classify (repeatable)")
    source.add_argument("--input", help="CSV / TSV (with header) / JSONL / Parquet file of examples, or - for stdin "
                                        "(read in chunks: any size)")
    source.add_argument("--output", help="write predictions to this .csv / .tsv / .jsonl / .parquet file (default: "
                                         "stdout, TSV); every input column is kept, after the prediction columns; "
                                         "may be --input. Written in parts (.NAME.parts/ beside it) until the end")
    source.add_argument("--resume", action="store_true",
                        help="continue a killed run writing the same --output from its finished parts (refused "
                             "when the arguments or the input differ)")
    source.add_argument("--prediction-prefix", default="", metavar="PREFIX",
                        help="put PREFIX before the prediction columns' names (label, p(<class>)): needed when the "
                             "input already has such columns, e.g. --prediction-prefix predicted_")
    add_chunk_options(source)
    engine = classify.add_argument_group("engine")
    engine.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process (default; several under accelerate launch / torchrun); ray: Ray "
                             "Data workers, each loading --model-dir once, score --input and the rows come back in "
                             "order to --output (pip install 'promptlearn[ray]')")
    engine.add_argument("--workers", type=positive_int, metavar="N",
                        help="--engine ray: Ray actors scoring in parallel, one CPU each (default 1)")
    engine.add_argument("--gpus-per-worker", type=gpus_per_worker, metavar="G",
                        help="--engine ray: GPUs of each worker (1; 0.5 puts two on one GPU; default 0: CPU)")
    engine.add_argument("--address", metavar="ADDR",
                        help="--engine ray: an existing Ray cluster (ray://HEAD:10001, or auto on one of its nodes; "
                             "default: RAY_ADDRESS, else a local cluster for the run)")
    classify.set_defaults(run=run_classify)

    evaluate = commands.add_parser("evaluate", help="accuracy, macro-F1 and confusion matrix on labelled data",
                                   description="Evaluate a prompt on labelled data: an LM-BFF k-shot folder "
                                               "(its test split by default), a task name (sst2, sst2:21, agnews, "
                                               "boolq, ...) or a labelled CSV / TSV / JSONL file.",
                                   epilog=EPILOG_EVALUATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prompt_options(evaluate, template_required=False)
    evaluate.add_argument("--model-dir", help="a classifier saved by `promptlearn train` (replaces --template and "
                                              "--verbalizer; with --model, that model replaces the saved one: needed "
                                              "when the folder names its base model by a local path)")
    evaluate.set_defaults(model=None)  # --model given or not: with --model-dir it matters
    add_data_options(evaluate)
    data = evaluate.add_argument_group("evaluation data")
    data.add_argument("--data", required=True, help="LM-BFF folder, task name, or labelled file (- for stdin)")
    data.add_argument("--split", default="test", help="split of a folder or task (default: test)")
    data.add_argument("--label-column", default="label", help="label column of a file (default: label)")
    data.add_argument("--limit", type=positive_int, help="evaluate a fixed seeded subset of this many examples")
    data.add_argument("--seed", type=int, default=0, help="seed of the --limit subset (default 0)")
    add_label_map(data)
    data.add_argument("--output", help="also write the report, with every example's raw and calibrated predictions, "
                                       "as JSON to this file; a .csv / .tsv / .jsonl / .parquet file gets them as a "
                                       "table and the report beside it (FILE.metrics.json)")
    data.add_argument("--resume", action="store_true",
                      help="continue a killed run writing the same per-example table (--output .csv / .tsv / .jsonl "
                           "/ .parquet) from its finished parts")
    add_chunk_options(data)
    data.add_argument("--update-card", action="store_true",
                      help="with --model-dir: record the figures in that folder (eval_results.json) and its model "
                           "card (README.md), for the folder's current weights")
    evaluate.set_defaults(run=run_evaluate)

    train = commands.add_parser("train", help="prompt-based fine-tuning (PET / LM-BFF) on a few labelled examples",
                                description="Fine-tune the model through the prompt: cross-entropy over the "
                                            "verbalizer's class scores (PET / LM-BFF), then save the classifier.",
                                epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prompt_options(train, repeatable=True)
    add_data_options(train)
    inputs = train.add_argument_group("training data")
    inputs.add_argument("--data", help="LM-BFF k-shot folder or task name (sst2, sst2:21): its train and dev splits")
    inputs.add_argument("--train", help="labelled training file (CSV / TSV / JSONL)")
    inputs.add_argument("--dev", help="labelled dev file for model selection (default with --data: its dev split)")
    inputs.add_argument("--unlabeled", help="unlabelled examples (file): for --distill and --ipet-generations, and "
                                            "the auxiliary LM loss (--mlm-weight)")
    inputs.add_argument("--label-column", default="label", help="label column of the files (default: label)")
    add_label_map(inputs)
    inputs.add_argument("--k", type=positive_int, metavar="K",
                        help="train on K examples per class drawn from the training data, seeded by --seed (the "
                             "draw of `promptlearn sample --k K --seed SEED`); a class with fewer than K rows is an "
                             "error (default: all the training data)")
    inputs.add_argument("--output", required=True, help="folder to save the trained classifier in")
    inputs.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")
    inputs.add_argument("--resume", action="store_true", help="continue an interrupted run from --output's checkpoint")
    hyper = train.add_argument_group("hyper-parameters")
    hyper.add_argument("--learning-rate", type=float,
                       help="AdamW learning rate (default: the --source method's starting point, its config's: "
                            + ", ".join(f"{name} {rate:g}" for name, rate in LEARNING_RATES.items()) + ")")
    hyper.add_argument("--epochs", type=float, default=10.0, help="passes over the training data (default 10)")
    hyper.add_argument("--max-steps", type=positive_int, help="optimizer steps (overrides --epochs)")
    hyper.add_argument("--train-batch-size", type=positive_int, default=8, help="examples per step (default 8)")
    hyper.add_argument("--gradient-accumulation", type=positive_int, default=1,
                       help="micro-batches per optimizer step (default 1)")
    hyper.add_argument("--tokens-per-pass", type=non_negative_int, metavar="N",
                       help="memory: compute a batch whose (padded) tokens exceed N in several forward/backward "
                            "passes, same gradient; activations take ~1.25 MiB per token with smollm2 (default: "
                            "512 on a CPU, no limit on a GPU; 0: no limit)")
    hyper.add_argument("--warmup-ratio", type=float, default=0.0, help="linear warm-up share of the steps")
    hyper.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    hyper.add_argument("--eval-every", type=positive_int, help="evaluate on dev every N steps (default: at the end)")
    hyper.add_argument("--patience", type=positive_int, help="stop after N evaluations without dev gain")
    hyper.add_argument("--seed", type=int, default=0, help="seed of data order, dropout and masking (default 0)")
    progress = train.add_argument_group("progress and checkpoints")
    progress.add_argument("--log-every", type=positive_int, default=10, metavar="N",
                          help="a progress line on stderr (step, loss, learning rate, examples/s, ETA) every N steps "
                               "or 30 s, whichever comes first, terminal or not (default 10); the plan (steps = "
                               "epochs x batches) comes first and a time estimate after step 3; -q (before or "
                               "after the command) turns them off")
    progress.add_argument("--checkpoint-every", type=checkpoint_interval, default="10m", metavar="N|TIME",
                          help="save a checkpoint in --output every N steps, or every TIME of wall-clock time (90s, "
                               "10m, 1.5h; default 10m), and at the end; Ctrl-C or SIGTERM also saves one at the "
                               "last finished step. --resume continues from it")
    several = train.add_argument_group("ensembles (several --template), distillation and iPET (PET)")
    several.add_argument("--ensemble", choices=("mean", "log_mean", "weighted", "vote"),
                         help="how the prompts' predictions combine: mean probability, mean log-probability, "
                              "weighted by each prompt's accuracy on the training data before training (PET), or "
                              "majority vote (default with several --template: mean); saves a PromptEnsemble")
    several.add_argument("--weights-from", choices=("train", "dev"), default="train",
                         help="--ensemble weighted: each prompt's accuracy before training on the training data "
                              "(default, as PET) or on --dev data")
    several.add_argument("--distill", action="store_true",
                         help="label --unlabeled with the ensemble's soft targets and train one --student on them; "
                              "--output then holds the student")
    several.add_argument("--student", choices=("finetune", "prompt"), default="finetune",
                         help="distilled model: a sequence classifier on --model (default) or a prompt classifier "
                              "with the first --template")
    several.add_argument("--temperature", type=float, default=2.0,
                         help="soft targets = softmax(ensemble log-probabilities / T) (default 2, as PET)")
    several.add_argument("--ipet-generations", type=int, default=0, metavar="N",
                         help="iPET generations after PET: each prompt is retrained on the labelled data plus "
                              "--unlabeled examples labelled by the other prompts, 5x more per generation")
    sources = train.add_argument_group(
        "continuous prompts and lightweight fine-tuning (the base model stays frozen; --output holds only the "
        "prompt's parameters and the base model's name)")
    add_tuning_flags(train, sources)  # generated from the tuning methods' configs
    train.set_defaults(run=run_train)

    adapt = commands.add_parser(
        "adapt", help="continued masked-LM training on unlabelled text (adds an MLM head if missing)",
        description="Domain-adaptive continued masked-LM training on unlabelled text.\n\n"
                    "recipe:\n"
                    "  1. load --model as a masked LM; when the checkpoint has no masked-LM head (e.g. a\n"
                    "     sentence-transformers encoder such as minilm) a fresh head is added, its decoder\n"
                    "     tied to the word embeddings\n"
                    "  2. phase 1: train that head alone, everything else frozen (--head-steps, default 300,\n"
                    "     at --head-learning-rate); skipped when the head was already trained, unless\n"
                    "     --head-steps is given\n"
                    "  3. phase 2: train all weights (--steps at --learning-rate)\n"
                    "  each step masks 15% of the tokens of --batch-size texts (BERT's 80/10/10 rule);\n"
                    "  AdamW, linear warm-up (6%) and decay to 0 in each phase.\n\n"
                    "Runs are reproducible (--seed) and show progress bars on a terminal. Checkpoints go to\n"
                    "OUTPUT.partial/ every --checkpoint-every steps: after an interruption rerun the same\n"
                    "command with --resume. The result is a standard AutoModelForMaskedLM folder\n"
                    "(safetensors, config, tokenizer) plus adapt.json (the recipe, losses and time).",
        epilog="examples:\n"
               "  promptlearn adapt --model minilm --shared-data --output models/minilm-mlm --threads 1\n"
               "  promptlearn adapt --model minilm --shared-data --output models/minilm-mlm --resume --threads 1\n"
               "  promptlearn adapt --model ./my-bert --texts reviews.txt more.csv --column review --steps 500 "
               "--output my-bert-reviews\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    adapt.add_argument("--model", required=True,
                       help="masked LM or encoder: hub id, local folder, or short name minilm (all-MiniLM-L6-v2)")
    adapt_texts = adapt.add_argument_group("unlabelled text (one of)").add_mutually_exclusive_group(required=True)
    adapt_texts.add_argument("--texts", nargs="+", metavar="FILE",
                             help=".txt (one text per line), .csv / .tsv / .jsonl (see --column) files")
    adapt_texts.add_argument("--shared-data", nargs="?", const="", metavar="ROOT",
                             help="the train (and dev) sentences of lm-bff/full/{SST-2,sst-5,mr,cr,subj,trec} and "
                                  "ag_news/train_pool.csv descriptions under ROOT (default: the shared data "
                                  "folder); never a test split")
    adapt.add_argument("--column", help="text column of .csv/.tsv/.jsonl files (default: text, or the only column)")
    adapt.add_argument("--max-texts", type=positive_int, help="train on a seeded subset of this many texts")
    adapt.add_argument("--output", required=True, help="folder to write the masked LM to")
    adapt_training = adapt.add_argument_group("training")
    adapt_training.add_argument("--head-steps", type=int,
                                help="phase-1 steps, head only (default: 300 when the head is missing, else 0)")
    adapt_training.add_argument("--steps", type=int, default=2000, help="phase-2 steps, all weights (default 2000)")
    adapt_training.add_argument("--learning-rate", type=float, default=1e-4, help="phase-2 peak rate (default 1e-4)")
    adapt_training.add_argument("--head-learning-rate", type=float, default=1e-3,
                                help="phase-1 peak rate (default 1e-3)")
    adapt_training.add_argument("--batch-size", type=positive_int, default=32, help="texts per step (default 32)")
    adapt_training.add_argument("--max-length", type=positive_int, default=128,
                                help="tokens per text; longer texts are truncated (default 128)")
    adapt_training.add_argument("--mlm-probability", type=float, default=0.15,
                                help="share of tokens masked (default 0.15)")
    adapt_training.add_argument("--checkpoint-every", type=positive_int, default=100,
                                help="steps between checkpoints (default 100)")
    adapt_training.add_argument("--seed", type=int, default=0,
                                help="seed of the new head, the text order, the masks and --max-texts (default 0)")
    adapt_training.add_argument("--resume", action="store_true",
                                help="continue an interrupted run from OUTPUT.partial/")
    adapt_training.add_argument("--overwrite", action="store_true",
                                help="replace an existing OUTPUT (and discard an interrupted run's checkpoints)")
    adapt_training.add_argument("--device", help="cpu, cuda, cuda:1, mps ... (default: cuda if available)")
    adapt_training.add_argument("--dtype", choices=DTYPES, help=DTYPE_HELP)
    adapt_training.add_argument("--threads", type=positive_int,
                                help="CPU threads for torch (default: torch's choice); on a CPU shared with other "
                                     "jobs, 1 can be many times faster")
    adapt.set_defaults(run=run_adapt)

    search = commands.add_parser(
        "search", help="find templates and label words automatically from a few labelled examples",
        description="Search for prompts (templates and label words) with the model itself, offline;\n"
                    "every candidate is scored on the dev examples.\n\n"
                    "methods (--method):\n"
                    "  labels      label words for one template (--template, default '{{ text }} It was [MASK].'):\n"
                    "              LM-BFF (each class's words with the highest summed log-probability at the\n"
                    "              mask over its training examples, combinations pruned by dev accuracy) and\n"
                    "              PETAL (words ranked by the likelihood ratio p(word | class) / p(word | all))\n"
                    "  infill      templates: a seed pool of patterns plus templates the model writes around\n"
                    "              the label word (a masked LM fills blanks: '<text> _ _ great _'); a causal LM\n"
                    "              cannot fill blanks, so it writes the words between the text and the label\n"
                    "              word instead (templates ending with [MASK])\n"
                    "  autoprompt  templates with trigger words found by AutoPrompt's gradient-guided HotFlip\n"
                    "              search on the frozen model ('<text> w1 w2 w3 [MASK].')\n"
                    "  all         labels, then infill and autoprompt with the best label words, then label\n"
                    "              words again for the best two new templates (the default)\n"
                    "infill and autoprompt use --verbalizer's words, or the best found by a label search first.\n\n"
                    "Scoring: zero-shot and calibrated dev accuracy for every candidate, then short prompt-based\n"
                    "fine-tuning (--train-steps) of the best --n-templates and their dev accuracy. The budget\n"
                    "(--budget-minutes, model loading not counted) is checked between candidates; template\n"
                    "generation stops at 60% of it when training follows. Output in --out: templates/TASK/N.j2,\n"
                    "verbalizers/TASK_N.json (N = rank), report.md and report.json (every candidate, ranked).",
        epilog="examples:\n"
               "  promptlearn search --model models/minilm-mlm --data ../shared/data/lm-bff/k-shot/SST-2/16-13 "
               "--out search/sst2\n"
               "  promptlearn search --model ./my-roberta --train train.csv --dev dev.csv --out search/reviews "
               "--task-name reviews --method labels --template \"{{ text }} All in all, it was [MASK].\"\n"
               "  promptlearn search --model smollm2 --data sst2 --out search/sst2-causal --method infill "
               "--verbalizer sst2 --budget-minutes 5\n"
               "  promptlearn evaluate --model ./my-roberta --template search/sst2/templates/sst2/1.j2 "
               "--verbalizer search/sst2/verbalizers/sst2_1.json --data sst2\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    search_model = search.add_argument_group("model")
    search_model.add_argument("--model", default="smollm2",
                              help="masked or causal LM: hub id, local folder, .gguf file or short name "
                                   "(default smollm2)")
    search_model.add_argument("--gguf-file", help="GGUF file inside --model's folder")
    search_model.add_argument("--batch-size", type=positive_int, default=16,
                              help="examples per forward pass (default 16)")
    search_model.add_argument("--max-length", type=positive_int, help="token budget of one prompt")
    search_model.add_argument("--device", help="cpu, cuda, cuda:1, mps ... (default: cuda if available)")
    search_model.add_argument("--dtype", choices=DTYPES, help=DTYPE_HELP)
    search_model.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    add_data_options(search)
    search_data = search.add_argument_group("labelled examples")
    search_data.add_argument("--data", help="LM-BFF k-shot folder or task name (sst2, sst2:21): its train and dev "
                                            "splits")
    search_data.add_argument("--train", help="labelled training file (CSV / TSV / JSONL)")
    search_data.add_argument("--dev", help="labelled dev file the candidates are scored on (with --data: default "
                                           "its dev split); it needs at least two classes")
    search_data.add_argument("--label-column", default="label", help="label column of the files (default: label)")
    add_label_map(search_data, search=True)
    search_options = search.add_argument_group("search")
    search_options.add_argument("--method", choices=("all", "labels", "infill", "autoprompt"), default="all",
                                help="what to search (see above; default all)")
    search_options.add_argument("--template", help="fixed template for label search (file, shipped name or Jinja "
                                                   "text); default '{{ text }} It was [MASK].'")
    search_options.add_argument("--verbalizer", help="fixed label words for template search (file or shipped name); "
                                                     "default: the best found by label search")
    search_options.add_argument("--n-templates", type=positive_int, default=3,
                                help="how many prompts to write out (and train briefly; default 3)")
    search_options.add_argument("--budget-minutes", type=float, default=10.0,
                                help="wall-clock budget of the search (default 10)")
    search_options.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    search_options.add_argument("--top-k-words", type=positive_int, default=10,
                                help="label search: candidate words per class (default 10)")
    search_options.add_argument("--candidate-words", metavar="WORDS",
                                help="label search: extra candidate words, possibly several tokens long: a "
                                     "comma-separated list ('not good,excellent') tried for every class, or a "
                                     "verbalizer file (class: words) naming each class's own")
    search_options.add_argument("--words-per-class", type=positive_int, default=1,
                                help="label search: also build a verbalizer with N words per class from the PETAL "
                                     "ranking (default 1: single words only)")
    search_options.add_argument("--triggers", type=positive_int, default=3,
                                help="autoprompt: number of trigger words (default 3)")
    search_options.add_argument("--autoprompt-iterations", type=int, default=8,
                                help="autoprompt: HotFlip swaps tried (default 8)")
    search_options.add_argument("--train-steps", type=int, default=30,
                                help="short prompt-based fine-tuning of the top candidates, in steps "
                                     "(default 30; 0: zero-shot scores only)")
    search_options.add_argument("--learning-rate", type=float, default=1e-4,
                                help="learning rate of that training (default 1e-4)")
    search_options.add_argument("--keep-margin", type=keep_margin, default="auto",
                                help="with --verbalizer: how much better on dev (accuracy) a found prompt must be "
                                     "to rank above the given one; small dev sets flatter the luckiest of many "
                                     "candidates. auto (default): the luck expected of the best of N candidates "
                                     "on n dev examples, 0.5/sqrt(n)*sqrt(2 ln N); 0: no preference")
    search_output = search.add_argument_group("output")
    search_output.add_argument("--out", required=True, help="folder for the templates, verbalizers and reports")
    search_output.add_argument("--task-name", help="names the files (default: from --data, else 'task')")
    search_output.add_argument("--overwrite", action="store_true",
                               help="replace an earlier search's files in --out")
    search.set_defaults(run=run_search)

    templates = commands.add_parser("templates", help="list the shipped templates and verbalizers, or show one",
                                    description="List the shipped templates (task/name) and verbalizers, or "
                                                "show one: a template's text, its fields and its verbalizers.",
                                    epilog="examples:\n  promptlearn templates\n  promptlearn templates sst5/review\n"
                                           "  promptlearn templates sst2\n  promptlearn templates sst2_review\n",
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    templates.add_argument("name", nargs="?", metavar="NAME",
                           help="show a template (e.g. sst5/review: its text, fields and verbalizers), every "
                                "template of a task (sst5), or a verbalizer (sst2_review)")
    templates.set_defaults(run=run_templates)

    sample = commands.add_parser(
        "sample", help="K labelled examples per class from a data file (seeded), every column kept",
        description="Draw K rows per class from labelled data (seeded; the rows keep their order, every column and "
                    "its values) and write them in the format of --output's suffix (.csv, .tsv, .json, .jsonl, "
                    ".parquet), atomically.",
        epilog="examples:\n"
               "  promptlearn sample --k 16 --seed 13 --input train.csv --output train-16-13.csv\n"
               "  promptlearn sample --k 8 --seed 21 --input reviews.json --label-column stars --output k8.jsonl\n"
               "  promptlearn sample --k 16 --seed 13 --input hf:imdb::train --output imdb-16-13.parquet\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sample.add_argument("--input", required=True,
                        help="labelled data: a .csv / .tsv / .json / .jsonl / .parquet file (- for stdin), a data "
                             "folder (its --split), hf:NAME[:CONFIG[:SPLIT]] or a folder saved by save_to_disk")
    sample.add_argument("--output", required=True, help="file to write, in the format of its suffix (may be --input)")
    sample.add_argument("--k", type=positive_int, required=True, help="rows per class")
    sample.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    sample.add_argument("--label-column", help="label column (default: label, labels, target, class or y)")
    sample.add_argument("--split", help="split of a folder or dataset (default: train for a folder; a dataset's "
                                        "only split)")
    sample.add_argument("--allow-fewer", action="store_true",
                        help="take every row of a class with fewer than K rows (default: an error)")
    sample.add_argument("--format", dest="fmt", choices=("csv", "tsv", "json", "jsonl", "parquet"),
                        help="format of --input when its extension does not say")
    sample.add_argument("--head", type=non_negative_int, metavar="N",
                        help="sample from the first N rows (in file order) only")
    sample.set_defaults(run=run_sample)

    add_export_parser(commands)

    _share_global_options(parser, commands)  # last: every top-level option, whoever added it
    return parser


def _version() -> str:
    from .. import __version__

    return __version__
