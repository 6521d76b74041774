"""Where the shipped templates and verbalizers live: inside an installed wheel, or at the repo root."""

from __future__ import annotations

from pathlib import Path

from .errors import PromptlearnError


def shipped_dir(kind: str) -> Path:
    """Folder of the shipped ``templates`` or ``verbalizers``."""
    here = Path(__file__).resolve().parent.parent  # the promptlearn package
    for candidate in (here / "_shipped" / kind, here.parent / kind):
        if candidate.is_dir():
            return candidate
    raise PromptlearnError(f"the shipped {kind} folder is missing next to {here}; reinstall promptlearn")
