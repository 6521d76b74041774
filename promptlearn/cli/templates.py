"""``promptlearn templates [NAME]``: list the shipped templates and verbalizers, or show one.

NAME is a shipped template (``sst5/review``: its text, its fields and the verbalizers of its task, the
default one first), a task (``sst5``: each of its templates so), or a shipped verbalizer (``sst2_review``).
Verbalizers are printed in the text form ``class: word, word`` that ``--verbalizer`` also reads from a file.
"""

from __future__ import annotations

import argparse
import re

from ..core.errors import PromptlearnError
from ..core.template import Template
from ..core.template import list_shipped as shipped_templates
from ..core.verbalizer import Verbalizer
from ..core.verbalizer import list_shipped as shipped_verbalizers
from .predict import default_verbalizer


def run_templates(args: argparse.Namespace) -> int:
    """List everything shipped, or show the template, task or verbalizer ``args.name``."""
    if not args.name:
        print("templates:   " + " ".join(shipped_templates()))
        print("verbalizers: " + " ".join(shipped_verbalizers()))
        return 0
    print(describe(args.name))
    return 0


def describe(name: str) -> str:
    """The text shown for one shipped name (see the module's docstring); an unknown name is a one-line error
    listing what is shipped."""
    name = name.strip().removesuffix(".j2")
    templates = shipped_templates()
    if name in templates:
        return _describe_template(name)
    task_templates = [t for t in templates if t.split("/")[0] == name]
    if task_templates:
        return "\n\n".join(_describe_template(t) for t in task_templates)
    if name in shipped_verbalizers():
        return f"verbalizer {name}:\n{_verbalizer_text(name)}"
    tasks = sorted({t.split("/")[0] for t in templates})
    raise PromptlearnError(f"no shipped template, task or verbalizer {name!r}; `promptlearn templates` lists them "
                           f"(tasks: {', '.join(tasks)})")


def _describe_template(name: str) -> str:
    """A shipped template's file, text, fields and its task's verbalizers (the CLI's default first)."""
    template = Template.load(name)
    task = name.split("/")[0]
    default = default_verbalizer(name)
    others = [v for v in shipped_verbalizers() if v != default and (v == task or v.startswith(f"{task}_"))]
    lines = [f"template {name} ({template.path}):", _indent(template.source), "",
             f"fields: {', '.join(_field_order(template))}",
             f"verbalizer {default} (the default for {name}):", _verbalizer_text(default)]
    for other in others:
        lines += [f"verbalizer {other} (also for {task}: --verbalizer {other}):", _verbalizer_text(other)]
    return "\n".join(lines)


def _field_order(template: Template) -> list[str]:
    """The template's fields in the order its text first uses them (outside its ``{# comment #}``)."""
    text = re.sub(r"\{#.*?#\}", "", template.source, flags=re.DOTALL)

    def first_use(field: str) -> int:
        found = re.search(rf"\b{re.escape(field)}\b", text)
        return found.start() if found else len(text)

    return sorted(template.fields, key=lambda field: (first_use(field), field))


def _verbalizer_text(name: str) -> str:
    """A shipped verbalizer as ``class: word, word`` lines, indented."""
    verbalizer = Verbalizer.load(name)
    return _indent("\n".join(f"{c}: {', '.join(words)}" for c, words in zip(verbalizer.classes, verbalizer.words)))


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
