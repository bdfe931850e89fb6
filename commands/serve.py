"""Serve a trained model as an HTTP API and a web page.

    python serve.py runs/<run>                       # http://127.0.0.1:8000 : the page; /docs: the API
    python serve.py runs/<run> --backend onnx-int8-static --port 8080
    python serve.py runs/<run> --backend onnx-int8-static --workers 2   # 2 processes, 1 thread each
    curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"texts": ["what a day"]}'

RUN_OR_MODEL is anything predict.py takes. The server binds to 127.0.0.1 unless --host
says otherwise (binding to another address exposes the model to that network: your choice).
uvicorn serves it; Ctrl-C stops it. With --workers N, uvicorn runs N processes on the one
port (the OS hands each new connection to one of them); each loads its own model, batches its
own requests and uses --threads intra-op threads (default: the cores divided among the workers),
so N processes do not fight over the cores as N x all-cores threads would. The model is loaded
once in the parent first: a bad target fails with one line, and an ONNX export or static int8
calibration is made once, not raced by N workers.

No client can hold the server: a request (head and body) must arrive within --request-timeout
seconds, an idle connection closes --keep-alive seconds after its answer, a worker takes at most
--max-connections connections (then 503), and under overload each log line is one line, repeats
counted (tweetcls/connections.py).

Concurrent requests are classified in one batch, yet no answer depends on the others: torch,
onnx and onnx-int8-static give a text the same answer in any batch; bf16, int8 and onnx-int8
do not (dynamic int8 measures each batch's activation ranges), so the service runs each of
their texts alone, slower, and says so at start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

from tweetcls.core.backends import BACKENDS, BATCH_DEPENDENT, backends_help
from tweetcls.core.errors import REPORTED, UsageError, flags_of, report  # noqa: F401
from tweetcls.core.options import EXISTING_DIR, NAME, NON_NEGATIVE_FLOAT, OPEN_PROBABILITY, POSITIVE_INT, Parser, Text, count, program
from tweetcls.core.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", type=Text("run directory, model folder or name"), metavar="RUN_OR_MODEL")
    p.add_argument("--backend", choices=BACKENDS, default="torch", help=backends_help())
    p.add_argument("--host", type=NAME, default="127.0.0.1")
    p.add_argument("--port", type=count(1, 65535), default=8000)
    p.add_argument("--max-texts", type=POSITIVE_INT, default=64, help="texts per request")
    p.add_argument("--max-chars", type=POSITIVE_INT, default=2000, help="characters per text; a longer text is refused (4xx), in JSON and in uploaded files alike")
    p.add_argument("--max-body-bytes", type=POSITIVE_INT, default=1_000_000)
    p.add_argument("--batch-window-ms", type=NON_NEGATIVE_FLOAT, default=5.0, help="collect concurrent requests this long")
    p.add_argument("--min-confidence", type=OPEN_PROBABILITY, default=None, help="abstain below this (default: the run's)")
    p.add_argument("--data-dir", type=EXISTING_DIR, default=None, help="for the page's example texts (default: as trained)")
    p.add_argument("--workers", type=count(1, 256), default=1,
                   help="server processes on the one port, each with its own model and micro-batcher")
    p.add_argument("--threads", type=count(1, 1024), default=None,
                   help="intra-op threads per worker (default: the machine's cores // --workers, at least 1)")
    p.add_argument("--request-timeout", type=count(1, 3600), default=15, metavar="SECONDS",
                   help="a request's head and body must arrive within this long of the connection's start or its "
                        "previous answer, else the connection is closed (slow or half-sent requests)")
    p.add_argument("--keep-alive", type=count(1, 3600), default=5, metavar="SECONDS",
                   help="close a connection idle this long after an answer")
    p.add_argument("--max-connections", type=count(1, 100_000), default=256,
                   help="open connections per worker; past it a new one gets 503 and is closed")
    return p


@dataclass(frozen=True, kw_only=True)
class ServeSettings(Settings):
    """serve.py's settings: one field per flag (its help: python serve.py --help). With --workers N
    they reach each worker process as JSON (WORKER_ARGS_ENV) and are built again from it."""

    target: str  # anything predict.py takes
    backend: str  # one of core/backends.py's BACKENDS
    host: str
    port: int
    max_texts: int  # texts per request
    max_chars: int  # characters per text
    max_body_bytes: int
    batch_window_ms: float  # how long concurrent requests are collected into one batch
    min_confidence: float | None  # abstain below this; None: the run's
    data_dir: str | None  # for the page's example texts; None: as trained
    workers: int  # server processes on the one port
    threads: int | None  # intra-op threads per worker; None: the cores // --workers
    request_timeout: int  # seconds for a request's head and body to arrive
    keep_alive: int  # seconds an idle connection stays open after an answer
    max_connections: int  # open connections per worker


def parse_args(argv: list[str] | None = None) -> ServeSettings:
    return ServeSettings.from_namespace(build_parser().parse_args(argv))


WORKER_ARGS_ENV = "TWEETCLS_SERVE_ARGS"  # how the parent hands its options to the worker processes


def threads_per_worker(args: ServeSettings) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return args.threads or max(1, cores // args.workers)


def worker_app():
    """The app of one worker process (uvicorn --workers calls this factory in each), from the parent's
    settings: a field missing from WORKER_ARGS_ENV, or one unknown there, is a TypeError at the
    worker's start, not an option silently lost."""
    from tweetcls.core.quiet import quiet_libraries

    quiet_libraries()
    return make_app(ServeSettings(**json.loads(os.environ[WORKER_ARGS_ENV])))


def make_app(args: ServeSettings):
    from tweetcls.model_card import model_card
    from tweetcls.predictor import Predictor
    from tweetcls.service import Limits, create_app

    predictor = Predictor.from_run(args.target, args.backend, min_confidence=args.min_confidence,
                                   threads=threads_per_worker(args))
    limits = Limits(max_texts=args.max_texts, max_chars=args.max_chars, max_body_bytes=args.max_body_bytes,
                    batch_window_ms=args.batch_window_ms, max_batch_texts=max(64, args.max_texts))
    return create_app(predictor, model_card(predictor, data_dir=args.data_dir), limits)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = parse_args(argv)
        from tweetcls.core.quiet import quiet_libraries

        quiet_libraries()
        app = make_app(args)
    except REPORTED as err:  # bad input, any OSError (a read-only disk...): one line with the path
        return report(program("serve.py"), err, flags_of(build_parser()))
    except KeyboardInterrupt:  # while the model loaded: nothing was served yet
        print(f"{program('serve.py')}: interrupted before the server started", file=sys.stderr)
        return 130
    import uvicorn

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"serve.py: listening on {args.host}: reachable from other machines on that network", file=sys.stderr)
    threads = threads_per_worker(args)
    print(f"serving {args.target} ({args.backend}) at http://{args.host}:{args.port}/ with {args.workers} "
          f"worker{'s' if args.workers > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}", file=sys.stderr)
    if args.backend in BATCH_DEPENDENT:
        print(f"serve.py: {args.backend} answers depend on batch mates, so each text runs alone (slower); "
              "onnx-int8-static batches and answers every text as alone", file=sys.stderr)
    from tweetcls.connections import MAX_CONNECTIONS_ENV, PROTOCOL, REQUEST_TIMEOUT_ENV, log_config

    os.environ[REQUEST_TIMEOUT_ENV], os.environ[MAX_CONNECTIONS_ENV] = str(args.request_timeout), str(args.max_connections)
    hygiene = dict(http=PROTOCOL, timeout_keep_alive=args.keep_alive, limit_concurrency=args.max_connections,
                   h11_max_incomplete_event_size=16 * 1024,  # a request head over 16 KiB is a 400
                   log_config=log_config(), log_level="warning", host=args.host, port=args.port)
    if args.workers == 1:
        uvicorn.run(app, **hygiene)
        return 0
    del app  # the workers load their own; this one only checked the target and made its exports
    os.environ[WORKER_ARGS_ENV] = json.dumps(args.as_dict())
    uvicorn.run("tweetcls.commands.serve:worker_app", factory=True, workers=args.workers, **hygiene)
    return 0


if __name__ == "__main__":
    sys.exit(main())
