"""An ensemble's members: the classes they share (same names, same order), and how a member is named in messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.errors import PromptlearnError


def describe_member(member: Any, position: int) -> str:
    template = getattr(member, "template", None)
    what = f" with template {template!r}" if isinstance(template, str) and len(template) < 80 else ""
    return f"member {position} ({type(member).__name__}{what})"


def member_classes(member: Any) -> list[str] | None:
    try:
        classes = member.classes_
    except AttributeError:  # e.g. an unfitted FineTuneClassifier: its classes come from its training labels
        return None
    return None if classes is None else [str(c) for c in classes]


def common_classes(members: Sequence[Any], *, required: bool = True) -> list[str] | None:
    """The classes every member shares (same names, same order); a clear error where they differ."""
    first: tuple[int, list[str]] | None = None
    for position, member in enumerate(members):
        classes = member_classes(member)
        if classes is None:
            continue
        if first is None:
            first = (position, classes)
        elif classes != first[1]:
            other = describe_member(members[first[0]], first[0])
            raise PromptlearnError(
                f"{describe_member(member, position)} has the classes {classes}, but {other} "
                f"has {first[1]}; every member of an ensemble needs the same classes in the same order (give the "
                "verbalizers the same class names, in the same order)")
    if first is None:
        if required:
            raise PromptlearnError("no member of the ensemble knows its classes yet; fit the members first "
                                   "(or use PromptClassifiers, whose verbalizer names the classes)")
        return None
    return first[1]
