"""The base of every command's typed settings: one frozen field per flag, built from the parser's result.

Each command declares its own dataclass beside its parser (``commands/<name>.py``; the training
commands' in training/settings.py), with one field per flag named as the flag's dest
(``--batch-size`` is ``batch_size``). ``from_namespace`` refuses a parser and a dataclass that
disagree, so a flag added without its field (or a field left behind by a removed flag) fails at
the first parse instead of a value going missing on the way.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import TypeVar

S = TypeVar("S", bound="Settings")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """A command's parsed options, typed and frozen (dataclasses.replace makes a changed copy)."""

    @classmethod
    def from_namespace(cls: type[S], args: argparse.Namespace) -> S:
        """The parser's result as settings; a flag without a field (or a field without a flag) is a
        programming error said at once, not a value lost on the way."""
        fields = {f.name for f in dataclasses.fields(cls)}
        given = set(vars(args))
        if fields != given:
            raise TypeError(f"{cls.__name__} and its parser disagree: only flags {sorted(given - fields)}, "
                            f"only fields {sorted(fields - given)}")
        return cls(**vars(args))

    def as_dict(self) -> dict:
        """Plain values: what a YAML or JSON file (config.yaml, results.json's ``config``) holds."""
        return dataclasses.asdict(self)
