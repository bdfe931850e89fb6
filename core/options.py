"""What every option of every command accepts, declared where the option is: argparse ``type=``.

A ``Domain`` converts the flag's text (or a YAML value) and refuses anything outside its range
with one line naming what is accepted, before any model or data loads. Its fields say what the
range is, so tests/test_options_fuzz.py can draw values outside it for every option of every
command, instead of keeping a list of bad cases. ``Parser`` turns argparse's own errors
(unknown flags, missing values) into the same one-line UsageError.
"""

from __future__ import annotations

import argparse
import codecs
import math
import os
import re
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

INT_MAX = 2**31 - 1  # larger counts overflow torch's and the OS's int arguments


INVOKED_AS: ContextVar[str | None] = ContextVar("invoked_as", default=None)
"""How the running command was typed, where that is not its script's name: ``tweetcls train``
(set by the ``tweetcls`` command). sys.argv stays as it is: Lightning re-runs it for DDP ranks."""


def program(script: str) -> str:
    """The name a command's messages and usage start with: ``train.py``, or ``tweetcls train``."""
    return INVOKED_AS.get() or script


class Parser(argparse.ArgumentParser):
    """argparse whose errors are a UsageError, which each command prints as its one line
    (``prog: error: --flag must be ..., got ...``) with exit code 2, instead of a usage block."""

    def __init__(self, *args, prog: str | None = None, **kwargs):
        super().__init__(*args, prog=prog or INVOKED_AS.get(), **kwargs)

    def error(self, message: str):
        from tweetcls.core.errors import UsageError

        # argparse says "argument --batch-size: must be ..."; say "--batch-size must be ..."
        message = re.sub(r"^argument (\S+?)(/\S+)?: (?=must |expected |invalid choice)", r"\1 ", message)
        raise UsageError(" ".join(message.split()))


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """'(default: X)' only where there is a default and the help does not already say it
    (--help once printed "(default: minilm-l6) (default: None)")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return text if action.default is None or "default" in text else super()._get_help_string(action)


@dataclass(frozen=True)
class Number:
    """An int or float in [low, high] (an end marked open excludes it); NaN and inf never pass."""

    kind: type  # int or float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    excluded: tuple = ()  # values inside [low, high] that are still refused

    @property
    def __name__(self) -> str:  # argparse names a type by it
        return self.kind.__name__

    def describe(self) -> str:
        return self._bounds() + "".join(f", not {_num(x)}" for x in self.excluded)

    def _bounds(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None and self.high != INT_MAX:
            return (f"{noun} in {'(' if self.low_open else '['}{_num(self.low)}, "
                    f"{_num(self.high)}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {_num(self.low)}"
        return noun

    def __call__(self, value):
        if isinstance(value, bool) or value is None:
            raise self._refuse(value)
        if self.kind is int:
            try:
                number = int(value) if isinstance(value, int) else int(str(value).strip())
            except ValueError:
                raise self._refuse(value) from None
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise self._refuse(value) from None
            if not math.isfinite(number):
                raise self._refuse(value)
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if too_high and self.high == INT_MAX:
            raise argparse.ArgumentTypeError(f"must be at most {INT_MAX}, got {value!r}")
        if too_low or too_high or number in self.excluded:
            raise self._refuse(value)
        return number

    def _refuse(self, value) -> argparse.ArgumentTypeError:
        return argparse.ArgumentTypeError(f"must be {self.describe()}, got {value!r}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def count(low: int = 1, high: int = INT_MAX) -> Number:
    """An integer in [low, high]."""
    return Number(int, low, high)


POSITIVE_INT = Number(int, 0, INT_MAX, low_open=True)
NON_NEGATIVE_INT = Number(int, 0, INT_MAX)
ANY_INT = Number(int, -INT_MAX, INT_MAX)
POSITIVE_FLOAT = Number(float, 0, None, low_open=True)
NON_NEGATIVE_FLOAT = Number(float, 0)
PROBABILITY = Number(float, 0, 1)  # [0, 1]
OPEN_PROBABILITY = Number(float, 0, 1, low_open=True, high_open=True)  # (0, 1)
FRACTION = Number(float, 0, 1, high_open=True)  # [0, 1)
PORT = Number(int, 0, 65535)
STEPS_OR_ALL = Number(int, -1, INT_MAX, excluded=(0,))  # -1: no limit
SEED = Number(int, 0, 2**32 - 1)  # numpy's and Lightning's seed range


@dataclass(frozen=True)
class Text:
    """A non-empty string without control characters (a name, a column, a URL, a list of names)."""

    what: str = "text"
    free: bool = False  # any string at all (a text to classify may be empty or hold newlines)

    @property
    def __name__(self) -> str:
        return self.what

    def __call__(self, value) -> str:
        if isinstance(value, (bool, list, dict)) or value is None:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {value!r}")
        text = str(value)
        if self.free:
            return text
        if not text.strip() or any(ord(c) < 32 for c in text):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {value!r}")
        return text

    def describe(self) -> str:
        return f"a non-empty {self.what} without control characters"


@dataclass(frozen=True)
class Encoding(Text):
    """A text encoding Python knows (utf-8, latin-1, cp1252, ...)."""

    what: str = "encoding"

    def __call__(self, value) -> str:
        text = super().__call__(value)
        try:
            codecs.lookup(text)
        except LookupError:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {value!r}") from None
        return text

    def describe(self) -> str:
        return "a text encoding Python knows (utf-8, latin-1, cp1252, ...)"


@dataclass(frozen=True)
class PathTo:
    """A path: an existing ``file``, an existing ``dir``, a ``new-dir`` (missing or a folder, never a
    file) or an ``output`` file (missing or a file, never a folder)."""

    kind: str

    @property
    def __name__(self) -> str:
        return "path"

    def __call__(self, value) -> str:
        text = Text("path")(value)
        path = Path(text)
        ok = {"file": path.is_file, "dir": path.is_dir,
              "new-dir": lambda: path.is_dir() or (not path.exists() and _under_a_folder(path)),
              "output": lambda: not path.is_dir() and path.absolute().parent.is_dir()}[self.kind]()
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return text

    def describe(self) -> str:
        return {"file": "an existing file", "dir": "an existing folder",
                "new-dir": "a folder (it may not exist yet), not a file nor under one",
                "output": "a file path in an existing folder, not a folder"}[self.kind]


def _under_a_folder(path: Path) -> bool:
    """Whether the nearest existing parent of ``path`` is a folder (``a-file/runs`` can never be made)."""
    for parent in path.absolute().parents:
        if parent.exists():
            return parent.is_dir()
    return True


EXISTING_FILE, EXISTING_DIR, OUTPUT_DIR, OUTPUT_FILE = PathTo("file"), PathTo("dir"), PathTo("new-dir"), PathTo("output")
NAME = Text("name")
FREE_TEXT = Text("text", free=True)
DOMAINS = (Number, Text, PathTo)  # every option's type is one of these (or it has choices, or is a flag)


def check_value(action: argparse.Action, value, where: str):
    """A value from a YAML file checked as its flag would be: ``where`` names the file."""
    from tweetcls.core.errors import UsageError

    try:
        return action.type(value) if isinstance(action.type, DOMAINS) else value
    except argparse.ArgumentTypeError as err:
        raise UsageError(f"{where}: {action.dest} {err}") from None


def declared(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Every option and positional of ``parser`` but --help."""
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def undeclared(parser: argparse.ArgumentParser) -> list[str]:
    """Options whose accepted values are not declared: neither a flag, nor choices, nor a domain."""
    loose = []
    for action in declared(parser):
        if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction) or action.choices is not None:
            continue
        if not isinstance(action.type, DOMAINS):
            loose.append(action.option_strings[-1] if action.option_strings else action.dest)
    return loose


def yaml_mapping(text: str, where: str) -> object:
    """``yaml.safe_load`` of an options file (a --config, best.yaml, a search space), refusing a key
    written twice, also as ``max-epochs`` beside ``max_epochs``: YAML keeps the last copy without a
    word (``lr: 1e-3`` then ``lr: 1e-2`` trained at 1e-2), as json does in the service's bodies.
    Raises ``yaml.YAMLError`` for text that is not YAML, as ``safe_load`` does."""
    import yaml
    from tweetcls.core.errors import UsageError

    class UniqueKeys(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
        seen: dict[str, object] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            name = str(key).replace("-", "_")
            if name in seen:
                raise UsageError(f"{where} names {name!r} twice (line {key_node.start_mark.line + 1}); keep one")
            seen[name] = key
        return loader.construct_mapping(node, deep=True)

    UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=UniqueKeys)  # a SafeLoader subclass: no Python objects


def path_argument(value: object, parameter: str) -> str | os.PathLike[str]:
    """``value`` when it can name a folder, file or model (a str or os.PathLike); else a TypeError
    naming the Python API's ``parameter``, not pathlib's "expected str, bytes or os.PathLike object"
    from frames below the call (``Predictor.from_run(None)``, ``load_run(3)``, bytes)."""
    import os

    if isinstance(value, str) or (isinstance(value, os.PathLike) and isinstance(os.fspath(value), str)):
        return value
    raise TypeError(f"{parameter} must be a run directory, model folder or name (a str or pathlib.Path), "
                    f"got {type(value).__name__} ({value!r:.40})")
