"""Classify new text with a trained model.

    python predict.py runs/<run> "what a day" "so angry right now"
    cat tweets.txt | python predict.py runs/<run>
    python predict.py runs/<run> --input tweets.csv --text-column text --output predictions.csv
    python predict.py runs/<run> --backend onnx-int8 --input tweets.txt --output out.jsonl --top-k 3
    python predict.py runs/<run> --abstain-precision 0.9 "maybe"     # say "uncertain" below 90% precision

RUN_OR_MODEL is a run directory, its adapter/, an int8 variant, an ONNX export folder or
file, a model folder, or a model name. Each result row has the input's row id, the label,
its probability and the labels' probabilities, in input order; an empty text gets a row
marked empty. Output files appear whole or not at all. Bad input is one line and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tweetcls.core.backends import BACKENDS, backends_help
from tweetcls.core.errors import REPORTED, UsageError, flags_of, report
from tweetcls.core.options import (EXISTING_DIR, EXISTING_FILE, Encoding, FREE_TEXT, NAME, OPEN_PROBABILITY,
                                   Number, OUTPUT_FILE, POSITIVE_INT, Parser, Text, program)
from tweetcls.core.settings import Settings

INPUT_TYPES = (".txt", ".csv", ".tsv", ".json", ".jsonl")
OUTPUT_TYPES = (".csv", ".jsonl")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", type=Text("run directory, model folder or name"), metavar="RUN_OR_MODEL")
    p.add_argument("texts", type=FREE_TEXT, nargs="*", help="texts to classify (default: --input, else one per line on stdin; stdin streams: rows before a bad "
                        "line are printed, then the error and exit 2)")
    p.add_argument("--input", type=EXISTING_FILE, default=None, help=f"a file of texts: {', '.join(INPUT_TYPES)}")
    p.add_argument("--text-column", type=NAME, default="text", help="text column of a .csv/.tsv/.json/.jsonl input")
    p.add_argument("--id-column", type=NAME, default="id", help="row id column of the input, if it has one (else the row number)")
    p.add_argument("--encoding", type=Encoding(), default="utf-8", help="text encoding of the input file (e.g. latin-1)")
    p.add_argument("--output", type=OUTPUT_FILE, default=None, help=f"write the predictions to a {' or '.join(OUTPUT_TYPES)} file")
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help=backends_help())
    p.add_argument("--batch-size", type=POSITIVE_INT, default=64)
    p.add_argument("--top-k", type=POSITIVE_INT, default=None, help="report the k most probable labels (default: all)")
    p.add_argument("--threads", type=POSITIVE_INT, default=None, help="CPU threads (default: torch's)")
    abstain = p.add_argument_group("abstaining (single-label runs)")
    abstain.add_argument("--min-confidence", type=OPEN_PROBABILITY, default=None,
                         help="answer 'uncertain' when the top (calibrated) probability is below this")
    abstain.add_argument("--abstain-precision", type=Number(float, 0, 1, low_open=True), default=None,
                         help="choose --min-confidence on the validation split for this precision, and save it "
                              "with the run (abstain.json) for later predictions and the service")
    p.add_argument("--data-dir", type=EXISTING_DIR, default=None, help="for --abstain-precision: the run's data (default: as trained)")
    p.add_argument("--progress-bar", action=argparse.BooleanOptionalAction, default=True)
    return p


@dataclass(frozen=True, kw_only=True)
class PredictSettings(Settings):
    """predict.py's settings: one field per flag (its help: python predict.py --help)."""

    target: str  # run directory, adapter, export, model folder or name
    texts: list[str]  # texts given as arguments; empty: --input, else stdin
    input: str | None  # a file of texts (INPUT_TYPES)
    text_column: str
    id_column: str
    encoding: str  # of the input file or stdin
    output: str | None  # a .csv or .jsonl file; None: print the rows
    backend: str  # one of core/backends.py's BACKENDS
    batch_size: int
    top_k: int | None  # None: every label
    threads: int | None  # None: torch's
    min_confidence: float | None  # answer 'uncertain' below this
    abstain_precision: float | None  # choose --min-confidence on val for this precision
    data_dir: str | None  # for --abstain-precision; None: as trained
    progress_bar: bool


def parse_args(argv: list[str] | None = None) -> PredictSettings:
    return PredictSettings.from_namespace(build_parser().parse_intermixed_args(argv))


def check_args(args: PredictSettings) -> None:
    checks = [
        (not (args.min_confidence is not None and args.abstain_precision is not None),
         "give --min-confidence or --abstain-precision, not both"),
        (not (args.texts and args.input), "give texts or --input, not both"),
        (args.input is None or Path(args.input).suffix.lower() in INPUT_TYPES,
         f"--input must be one of {', '.join(INPUT_TYPES)}, got {args.input}"),
        (args.output is None or Path(args.output).suffix.lower() in OUTPUT_TYPES,
         f"--output must be a {' or '.join(OUTPUT_TYPES)} file, got {args.output}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    if args.output and Path(args.output).is_dir():
        raise UsageError(f"--output {args.output} is a folder; give a file name")
    if args.output:  # never the input itself, nor a file predict.py did not write
        from tweetcls.core.outputs import check_output_file, is_predictions

        check_output_file(args.output, "--output", [args.input], is_predictions, "predict.py")
    for text in args.texts:  # `predict.py RUN tweets.csv` would classify the file's name, not its rows
        if looks_like_a_file(text):
            raise UsageError(f"{text!r} looks like a file name: pass the file as --input {text} (texts given as arguments are "
                             "classified as they are written)")
    cores = os.cpu_count() or 1
    if args.threads is not None and args.threads > cores:  # torch.set_num_threads(100000) segfaults
        raise UsageError(f"--threads {args.threads}: this machine has {cores} CPU cores; use at most --threads {cores}")


def looks_like_a_file(text: str) -> bool:
    """An argument that is an existing file, or one word ending in an input file type."""
    if Path(text).suffix.lower() in INPUT_TYPES and not any(c.isspace() for c in text):
        return True
    try:
        return os.path.isfile(text)
    except (OSError, ValueError):
        return False


CHUNK = 4096  # texts read, classified and written at a time: memory stays bounded for any input length


def read_inputs(args: PredictSettings) -> Iterator[tuple[object, str]]:
    """(row id, text) pairs from the arguments, the input file or stdin, in order, read as needed
    (a .json list is read whole; .txt, .csv, .tsv, .jsonl and stdin a line or row at a time)."""
    from tweetcls.datamodules.files import cell_text, header_hint, iter_lines, iter_records
    from tweetcls.prediction_files import UniqueIds

    if args.texts:
        yield from enumerate(args.texts, start=1)
        return
    if args.input:
        path = Path(args.input)
        if path.suffix.lower() == ".txt":
            yield from enumerate(iter_lines(path, args.encoding), start=1)
            return
        unique = UniqueIds(str(path), args.id_column, "make the ids unique, or name a column of unique ids with --id-column")
        for n, row in enumerate(iter_records(path, args.encoding), start=1):
            if args.text_column not in row:
                where = f"{path}" if n == 1 else f"record {n} of {path}"
                raise UsageError(f"column {args.text_column!r} not in {where} (columns: {', '.join(map(str, row))}); "
                                 + (header_hint(list(row), args.text_column)
                                    or "pass --text-column" + ("" if n == 1 else " or fix the record")))
            if args.id_column in row:  # two output rows of one id could not be told apart or joined back
                unique.check(row[args.id_column], n)
            # as training reads a text cell: a JSON number is its text ("5" was answered as an empty text),
            # null is empty, a list or object is refused
            yield row.get(args.id_column, n), cell_text(row[args.text_column], str(path), n, args.text_column)
        return
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("no texts: give them as arguments, with --input FILE, or one per line on stdin")
    lines = io.TextIOWrapper(sys.stdin.buffer, encoding=args.encoding, errors="strict")
    yield from enumerate((line.rstrip("\r\n") for line in lines), start=1)


def chunks(pairs: Iterator[tuple[object, str]], size: int | None = None) -> Iterator[tuple[list, list[str]]]:
    """(ids, texts) of at most ``size`` (default CHUNK) rows at a time."""
    while block := list(itertools.islice(pairs, size or CHUNK)):
        yield [row_id for row_id, _ in block], [text for _, text in block]


def choose_abstain_threshold(predictor, args: PredictSettings) -> dict:
    """--abstain-precision: the lowest confidence threshold reaching that precision on val; saved,
    with what it gives on the test split (held out from the choice) where that has labels."""
    import torch

    from tweetcls.loader import load_run_data
    from tweetcls.core.atomic import write_text_atomic
    from tweetcls.core.calibration import precision_at, threshold_for_precision
    from tweetcls.core.data_files import check_data_files
    from tweetcls.review.hub_card import rewrite_run_card
    from tweetcls.core.results_file import read_results
    from tweetcls.predictor import ABSTAIN_FILE

    if predictor.multi_label:
        raise UsageError("--abstain-precision is for single-label runs; a multi-label run uses its tuned threshold")
    if predictor.run_dir is None:
        raise UsageError("--abstain-precision needs a run directory (its validation data); use --min-confidence")
    results = read_results(predictor.run_dir)
    config = results.get("config", {})
    check_data_files(predictor.run_dir, {"--dataset": results.get("dataset"), "--val-file": config.get("val_file"),
                                         "--test-file": config.get("test_file")},
                     "its validation rows are not the ones the run held out, so the threshold would be chosen on "
                     "rows the model trained on", "restore the file, or give --min-confidence yourself")
    data = load_run_data(results, args.data_dir)
    if data.label_names != predictor.label_names:
        raise UsageError(f"the run's data now has labels {data.label_names}, the model {predictor.label_names}")

    def confidence_and_correct(split: str):
        rows = data.splits[split]
        confidence, predicted = torch.from_numpy(predictor.probabilities(list(rows["text"]))).max(dim=-1)
        return confidence, predicted == torch.tensor(rows["label"])

    chosen = threshold_for_precision(*confidence_and_correct("validation"), args.abstain_precision)
    if chosen["threshold"] is None:
        raise UsageError(f"no threshold reaches precision {args.abstain_precision} on the validation split; "
                         "ask for a lower precision")
    chosen |= {"split": "validation", "backend": predictor.backend, "temperature": predictor.temperature}
    if "test" in data.splits and len(data.splits["test"]):
        chosen["test"] = precision_at(*confidence_and_correct("test"), chosen["threshold"])
    write_text_atomic(predictor.run_dir / ABSTAIN_FILE, json.dumps(chosen, indent=2) + "\n")
    if not rewrite_run_card(predictor.run_dir, chosen):  # the card states the threshold and how to apply it
        print(f"{program('predict.py')}: {predictor.run_dir / 'model' / 'README.md'} was edited (or is missing), so it "
              f"was left as it is; the threshold is in {predictor.run_dir / ABSTAIN_FILE}", file=sys.stderr)
    return chosen


@contextmanager
def output_file(path: Path, labels: list[str], top_k: int | None) -> Iterator:
    """A PredictionWriter into a temporary file beside ``path``, renamed into place when every row
    is written: the output appears whole or not at all (a failure or Ctrl-C removes it)."""
    from tweetcls.prediction_files import PredictionWriter
    from tweetcls.core.atomic import atomic_file

    with atomic_file(path, newline="") as stream:
        yield PredictionWriter(stream, path.suffix.lower() == ".jsonl", labels, top_k)


def print_rows(ids: list, texts: list[str], results: list[dict]) -> None:
    for row_id, text, result in zip(ids, texts, results):
        probability = "" if result["probability"] is None else f"{result['probability']:.3f}"
        print(f"{row_id}\t{result['label'] or '(empty)'}\t{probability}\t{text}")


def run(args: PredictSettings) -> dict:
    from tqdm import tqdm

    from tweetcls.predictor import Predictor

    check_args(args)
    if args.input and not args.output:
        # stdout cannot be taken back: the whole file is read once first, so a bad row late in it is
        # one line and nothing printed, as with --output (stdin, which cannot be read twice, streams)
        for _ in read_inputs(args):
            pass
    rows = chunks(read_inputs(args))
    first = next(rows, None)  # the input is checked (columns, encoding) before the model loads
    predictor = Predictor.from_run(args.target, args.backend, args.batch_size, args.min_confidence, args.threads)
    chosen = choose_abstain_threshold(predictor, args) if args.abstain_precision is not None else None
    if chosen:
        predictor.min_confidence = chosen["threshold"]
        print(f"abstain below {chosen['threshold']:.4f}: precision {chosen['precision']:.4f} at coverage "
              f"{chosen['coverage']:.1%} on the validation split (saved in {predictor.run_dir}/abstain.json)",
              file=sys.stderr)
        if chosen.get("test", {}).get("precision") is not None:
            print(f"  on the test split: precision {chosen['test']['precision']:.4f} at coverage "
                  f"{chosen['test']['coverage']:.1%}", file=sys.stderr)
    bar = tqdm(unit="text", disable=not (args.progress_bar and args.input), file=sys.stderr)
    count, seconds = 0, 0.0
    with (output_file(Path(args.output), predictor.label_names, args.top_k) if args.output
          else contextlib.nullcontext()) as writer:
        for ids, texts in itertools.chain([first] if first else [], rows):
            start = time.perf_counter()
            results = predictor.predict(texts, args.top_k, progress=bar.update)
            seconds += time.perf_counter() - start
            if writer is not None:
                writer.write(ids, texts, results)
            else:
                print_rows(ids, texts, results)
            count += len(texts)
    bar.close()
    print(f"{count} texts in {seconds:.2f} s ({count / max(seconds, 1e-9):.0f} texts/s, backend "
          f"{predictor.backend}, batch size {args.batch_size}, {threads_in_use(args.threads)} threads)"
          + (f"; written to {args.output}" if args.output else ""), file=sys.stderr)
    return {"texts": count, "seconds": seconds}


def threads_in_use(asked: int | None) -> int | str:
    """What --threads set, or torch's count where torch ran (an ONNX export: ONNX Runtime's default)."""
    if asked:
        return asked
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch else "default"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = parse_args(argv)
        from tweetcls.core.quiet import quiet_libraries

        quiet_libraries(load=False)
        run(args)
    except REPORTED as err:  # bad input, a full disk, any OSError: one line naming the path
        return report(program("predict.py"), err, flags_of(build_parser()))
    except UnicodeDecodeError as err:
        print(f"{program('predict.py')}: error: standard input is not {args.encoding} (byte {err.start}); pass --encoding",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{program('predict.py')}: interrupted; no output file was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
