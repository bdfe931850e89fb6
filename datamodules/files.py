"""Reading data files (text, CSV/TSV, JSON/JSONL) with one clear error per problem.

Plain Python only (no ``datasets``), so predict.py can read its input without loading the
training stack."""

from __future__ import annotations

import csv
import io
import json
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from tweetcls.core.errors import UsageError

DATA_DIR_ENV = "TWEETCLS_DATA_DIR"


_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"),
         (b"\xfe\xff", "utf-16"))


def check_byte_order_mark(path: Path, encoding: str) -> None:
    """A file that opens with a UTF-16/UTF-32 byte-order mark is read only as what the mark says.
    Read as latin-1 (what the not-utf-8 error used to suggest) every character came with a NUL
    and was classified as such, without a word."""
    try:
        with open(path, "rb") as f:
            start = f.read(4)
    except OSError:
        return  # the read that follows reports it
    found = next((name for mark, name in _BOMS if start.startswith(mark)), None)
    if found and not encoding.lower().replace("_", "-").startswith(found):
        raise UsageError(f"data file {path} is {found.upper()} text (it starts with a {found.upper()} byte-order mark), "
                         f"not {encoding}; pass --encoding {found}, or save it as UTF-8")


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The file's text; a UTF-8 byte-order mark is dropped. Another encoding is one flag away."""
    if not path.is_file():
        raise UsageError(f"data file {path} not found; check the path, --data-dir (or ${DATA_DIR_ENV})")
    check_byte_order_mark(path, encoding)
    try:
        return path.read_text(encoding="utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8")
                              else encoding)
    except LookupError:
        raise UsageError(f"unknown --encoding {encoding!r}; use a Python codec name such as utf-8, latin-1, cp1252") from None
    except UnicodeDecodeError as err:
        raise UsageError(
            f"data file {path} is not {encoding} (byte {err.start}); pass its encoding, e.g. --encoding latin-1"
        ) from None
    except OSError as err:
        raise UsageError(f"cannot read data file {path}: {err.strerror}") from None


def split_lines(text: str) -> list[str]:
    """The lines of a text of one item a line: "\\n", "\\r\\n" and a lone "\\r" (old Mac) each end one,
    as Python's universal newlines read them; a last line end adds no empty line. Not
    str.splitlines: it would also break at U+2028, form feeds and friends inside tweets."""
    lines = io.StringIO(text, newline=None).read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_lines(path: Path, encoding: str = "utf-8") -> list[str]:
    """The file's lines (split_lines)."""
    return split_lines(read_text(path, encoding))


MAX_CELL = 16 * 1024 * 1024  # csv's default limit (128 KB) is below a long review; far beyond any max_length


def read_table(path: Path, delimiter: str, encoding: str = "utf-8") -> list[dict[str, str]]:
    """Rows of a CSV/TSV file with a header, as dicts (read whole: an encoding error names its byte)."""
    return list(_table_rows(io.StringIO(read_text(path, encoding), newline=""), path, delimiter))


def iter_table(path: Path, delimiter: str, encoding: str = "utf-8") -> Iterator[dict[str, str]]:
    """The rows of ``read_table``, read from the file as they are needed (predict.py's input)."""
    with open_text(path, encoding, newline="") as stream:
        try:
            yield from _table_rows(stream, path, delimiter)
        except UnicodeDecodeError as err:
            raise not_encoded(path, encoding, err) from None


def table_rows(stream: IO[str], path: Path | str, delimiter: str) -> Iterator[dict[str, str]]:
    """Rows of a CSV/TSV text already open (an upload), read and refused as a file's are."""
    return _table_rows(stream, path, delimiter)


def _table_rows(stream: IO[str], path: Path, delimiter: str) -> Iterator[dict[str, str]]:
    """Rows of a CSV/TSV text with a header, as dicts. Refused, with the first bad row and how many
    there are: a header naming a column twice (which copy is the label?) and rows whose field
    count differs from the header's (an unquoted comma in a tweet shifts the label into the
    text); ``csv.DictReader`` would drop or pad fields without a word. Blank lines are skipped.
    The bad rows are counted to the end of the file before the error."""
    csv.field_size_limit(MAX_CELL)
    kind, separator = ("CSV", "comma") if delimiter == "," else ("TSV", "tab")
    # strict: a quote opened and never closed is an error; without it csv read every later row into that
    # one text (a one-column file of 3 tweets gave 1 prediction)
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise UsageError(f"the header of {path} names column {repeated[0]!r} {header.count(repeated[0])} times; "
                             "rename or delete the extra copies so each column has one name")
        good, bad = 0, []
        for fields in reader:
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                bad.append((good + len(bad) + 1, reader.line_num, len(fields)))
                continue
            good += 1
            yield dict(zip(header, fields))
    except csv.Error as err:
        where = f"line {reader.line_num}"
        if "unexpected end of data" in str(err):
            raise UsageError(f"{path}: a quoted field opened before {where} (the end) is never closed; close its "
                             f"quote, or double a quote inside a quoted text (\"\")") from None
        raise UsageError(f"{path} is not a readable {kind} file ({err}, {where}); quote a text that holds a quote "
                         f"or a {separator} (\"like \"\"this\"\", this\")") from None
    if bad:
        row, line, count = bad[0]
        more = f" ({len(bad) - 1} more rows like it)" if len(bad) > 1 else ""
        raise UsageError(f"{path} row {row} (line {line}) has {count} fields, the header {len(header)}{more}; "
                         f"quote any text holding a {separator} (\"like, this\") or fix the row")


@contextmanager
def open_text(path: Path, encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO[str]]:
    """The file as a text stream (a UTF-8 byte-order mark dropped), with read_text's one-line errors
    for a missing file, an unknown encoding or an unreadable file; ``newline=None`` (universal
    newlines, as in read_lines), ``""`` for the csv module, which finds line ends inside quotes itself."""
    if not path.is_file():
        raise UsageError(f"data file {path} not found; check the path, --data-dir (or ${DATA_DIR_ENV})")
    check_byte_order_mark(path, encoding)
    try:
        stream = open(path, encoding="utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8")
                      else encoding, newline=newline)
    except LookupError:
        raise UsageError(f"unknown --encoding {encoding!r}; use a Python codec name such as utf-8, latin-1, cp1252") from None
    except OSError as err:
        raise UsageError(f"cannot read data file {path}: {err.strerror}") from None
    with stream:
        yield stream


def not_encoded(path: Path, encoding: str, err: UnicodeDecodeError) -> UsageError:
    """A stream decodes ahead of the line being read, so the error names the bytes, not the line."""
    return UsageError(f"data file {path} is not {encoding} ({err.reason}: {err.object[err.start:err.end]!r}); "
                      "pass its encoding, e.g. --encoding latin-1")


def iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[str]:
    """read_lines, one line at a time: universal newlines, so "\\r", "\\n" and "\\r\\n" each end a line."""
    with open_text(path, encoding, newline=None) as stream:
        try:
            for line in stream:
                yield line.removesuffix("\n")
        except UnicodeDecodeError as err:
            raise not_encoded(path, encoding, err) from None


def iter_records(path: Path, encoding: str = "utf-8") -> Iterator[dict]:
    """read_records, one record at a time for .csv, .tsv and .jsonl (a .json list is read whole)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        yield from iter_table(path, "," if suffix == ".csv" else "\t", encoding)
        return
    if suffix != ".jsonl":
        yield from read_records(path, encoding)
        return
    for number, line in enumerate(iter_lines(path, encoding), start=1):
        if line.strip():
            yield jsonl_record(line, path, number)


def jsonl_record(line: str, path: Path, number: int) -> dict:
    """One line of a .jsonl file as a record, or the one-line error naming the line."""
    row = json_line(line, path, number)
    if not isinstance(row, dict):
        raise UsageError(f"{path}: record {number} is not an object with named fields "
                         f"(got {type(row).__name__}); each record needs the text and label fields")
    return row


def json_line(line: str, path: Path, number: int):
    """The JSON value on line ``number`` of ``path``; bad JSON or a field named twice is one line."""
    try:
        return json.loads(line, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        raise UsageError(f"{path} line {number} is not valid JSON ({err.msg})") from None
    except DuplicateKey as err:
        raise UsageError(f"{path} line {number} names field {err.args[0]!r} twice; keep one") from None


class DuplicateKey(ValueError):
    """A JSON object naming a field twice (``json`` keeps the last silently)."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def read_records(path: Path, encoding: str = "utf-8") -> list[dict]:
    """Rows of a .csv, .tsv, .json (a list, or {"data": list}) or .jsonl file."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return read_table(path, "," if suffix == ".csv" else "\t", encoding)
    if suffix in (".json", ".jsonl"):
        text = read_text(path, encoding)
        if suffix == ".jsonl":
            data = [json_line(line, path, number) for number, line in enumerate(split_lines(text), start=1)
                    if line.strip()]
        else:
            try:
                data = json.loads(text, object_pairs_hook=_unique_keys)
            except json.JSONDecodeError as err:
                raise UsageError(f"{path} is not valid JSON (line {err.lineno}: {err.msg})") from None
            except DuplicateKey as err:
                raise UsageError(f"{path}: a record names field {err.args[0]!r} twice; keep one") from None
            data = data.get("data", data) if isinstance(data, dict) else data
        if not isinstance(data, list):
            raise UsageError(f"{path} must hold a list of records (or {{\"data\": [...]}})")
        for number, row in enumerate(data, start=1):
            if not isinstance(row, dict):
                raise UsageError(f"{path}: record {number} is not an object with named fields "
                                 f"(got {type(row).__name__}); each record needs the text and label fields")
        return data
    raise UsageError(f"unsupported data file type {suffix!r} for {path}; use .csv, .tsv, .json or .jsonl")


def column(rows: list[dict], name: str, path: Path, option: str, fix: str | None = None) -> list:
    """The column ``name`` of every record; a record without it is one line naming the fix (``fix``, where
    the flag ``option`` is not it)."""
    for number, row in enumerate(rows, start=1):
        if name not in row:
            where = f"{path}" if number == 1 else f"record {number} of {path}"
            raise UsageError(f"column {name!r} not in {where} (columns: {', '.join(map(str, row))}); "
                             + (header_hint(list(row), name) or fix or f"pass {option}" + (
                                 "" if number == 1 else " or fix the record")))
    return [row[name] for row in rows]


def header_hint(columns: list, name: str) -> str | None:
    """What is wrong with a header that lacks ``name`` when the column flag is no fix: a file separated by
    ";" or tabs read as one column, Excel's "sep=" first line, spaces around a name (the one line said
    "pass --text-column" for each, and the header it showed looked right)."""
    names = [str(c) for c in columns]
    spaced = next((c for c in names if c != c.strip() and c.strip() == name), None)
    if spaced is not None:
        return f"its header names {spaced!r}, with spaces around the name: remove them from the header"
    if names and names[0].lower().startswith("sep="):
        return "its first line is Excel's 'sep=' line, not the header: delete that line"
    for sep, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
        if len(names) == 1 and sep in names[0]:
            return (f"the header is one column holding {word}: the file is not separated by commas; save it as "
                    "CSV with commas" + (", or name it .tsv" if sep == "\t" else ""))
    return None


def cell_text(value, where: str, row: int, name: str) -> str:
    """A text cell as the text it stands for: a JSON number is text ("123"), as it would be in a CSV;
    null is empty; a list or object is refused (it is no text, and its repr would be trained on)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    raise UsageError(f"{where}: row {row} has a {type(value).__name__} in column {name!r}, not a text; "
                     "write the text as a string")
