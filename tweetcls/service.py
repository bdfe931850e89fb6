"""An HTTP API and a page for a trained model (FastAPI; served by uvicorn from serve.py).

    POST /predict        {"texts": [...]} -> {"predictions": [...]} (label, probability, probabilities)
    POST /predict/file   a CSV (with a "text" column) or TXT upload -> the predictions as a CSV download
    GET  /model          the model card as JSON
    GET  /health         {"status": "ok", "worker": <process id>}
    GET  /               the page; /docs (Swagger UI) and /openapi.json: the API docs, offline

Inference runs off the event loop in one worker thread, and requests arriving within a few
milliseconds are classified as one batch (tweetcls/batching.py). No answer depends on the other
requests: a backend whose answer moves with its batch mates (dynamic int8, bf16:
``BATCH_DEPENDENT``) runs each text alone. ``serve.py --workers N`` runs
N such processes on one port, each with its own model, batcher and intra-op threads. Every limit is checked
before a request reaches the model, and is named in the 4xx answer: texts per request,
characters per text, request body size; malformed JSON, a wrong content type or a non-string
text is a 4xx too, never a 500, and never affects another request.
"""


import io
import json
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Callable
from urllib.parse import quote

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints, create_model

from tweetcls.batching import MicroBatcher
from tweetcls.core.backends import BATCH_DEPENDENT
from tweetcls.prediction_files import predictions_csv

STATIC = Path(__file__).with_name("static")
FAVICON = "/static/favicon.svg"


class Limits(BaseModel):
    max_texts: int = 64  # per request
    max_chars: int = 2000  # per text
    max_body_bytes: int = 1_000_000
    max_file_texts: int = 10_000
    batch_window_ms: float = 5.0
    max_batch_texts: int = 64


class Prediction(BaseModel):
    label: str = Field(description="the predicted label; 'uncertain' below the abstain threshold; '' for an empty text")
    labels: list[str] | None = Field(None, description="multi-label runs: every label over the threshold")
    probability: float | None = Field(description="the top label's probability (None for an empty text)")
    probabilities: dict[str, float]
    empty: bool
    uncertain: bool = False


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class Health(BaseModel):
    status: str
    worker: int = Field(description="the id of the serving process (serve.py --workers N runs N of them)")


class ErrorBody(BaseModel):
    error: str


ERRORS = {code: {"model": ErrorBody} for code in (400, 413, 415, 422)}


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` (declared or streamed) ends in 413, unread."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _too_large(self.max_bytes)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _BodyTooLarge()
            return message

        try:
            return await self.app(scope, counted, send)
        except _BodyTooLarge:
            return await _too_large(self.max_bytes)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"error": f"request body is over the limit of {limit} bytes"}, status_code=413)


def served_predict(predictor) -> Callable[[list[str]], list[dict]]:
    """What the batcher calls: the predictor on the whole batch, or, for a backend whose answer would depend on
    the batch's other texts, on one text at a time (slower, but a text's answer is its own)."""
    if predictor.backend not in BATCH_DEPENDENT:
        return predictor.predict
    return lambda texts: [predictor.predict([text])[0] for text in texts]


def create_app(predictor, card: dict, limits: Limits | None = None) -> FastAPI:
    limits = limits or Limits()
    batcher = MicroBatcher(served_predict(predictor), limits.batch_window_ms, limits.max_batch_texts)
    Text = Annotated[StrictStr, StringConstraints(max_length=limits.max_chars)]
    PredictRequest = create_model(
        "PredictRequest", __config__=ConfigDict(extra="forbid"),
        texts=(list[Text], Field(min_length=1, max_length=limits.max_texts,
                                 description=f"1 to {limits.max_texts} texts of at most {limits.max_chars} characters")))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        await batcher.close()

    # FastAPI's /docs loads Swagger UI from a CDN; fastapi-offline serves the same page with the assets its
    # package ships (/static-offline-docs), so the docs render with no network. No /redoc: ReDoc fetches its
    # logo from the network, and Swagger UI says the same.
    app = FastAPIOffline(title="tweetcls", version="1", lifespan=lifespan, favicon_url=FAVICON, redoc_url=None,
                  description=f"{card.get('method', '')} classifier of {card.get('dataset', 'text')}: "
                              f"labels {', '.join(card.get('label_names', []))}")
    app.state.batcher, app.state.limits = batcher, limits

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return JSONResponse({"error": _in_words(first, limits, predictor.max_length)}, status_code=422)

    @app.middleware("http")
    async def json_only(request: Request, call_next):
        if request.method == "POST" and request.url.path == "/predict":
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return JSONResponse({"error": f"send the texts as JSON (Content-Type: application/json), "
                                              f"not {kind or 'no content type'}"}, status_code=415)
            undecodable = _not_unicode(await request.body())
            if undecodable:  # FastAPI's own answer was a bare 400 "There was an error parsing the body"
                return JSONResponse({"error": undecodable}, status_code=422)
            repeated = _repeated_key(await request.body())
            if repeated:  # json keeps the last copy without a word: {"texts": [a], "texts": [b, c]} answered b, c
                return JSONResponse({"error": f"the body names {repeated!r} twice; send each field once"},
                                    status_code=422)
        return await call_next(request)

    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.post("/predict", response_model=PredictResponse, responses=ERRORS)
    async def predict(request: PredictRequest) -> PredictResponse:  # type: ignore[valid-type]  (a runtime class: no postponed annotations in this module)
        results = await batcher.submit(list(request.texts))
        return PredictResponse(predictions=[_prediction(r) for r in results])

    @app.post("/predict/file", responses={**ERRORS, 200: {"content": {"text/csv": {}}}})
    async def predict_file(file: UploadFile = File(description="UTF-8 text: a .csv or .tsv with a 'text' column, or one "
                                                               "text a line")):
        raw = await file.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return JSONResponse({"error": "the file is not UTF-8 text"}, status_code=400)
        name = (file.filename or "").lower()
        if name.endswith((".json", ".jsonl")):
            return JSONResponse({"error": "a .json/.jsonl upload is not read here (each line would be classified as "
                                          "raw JSON); send a .csv or .tsv with a 'text' column, or one text a line"},
                                status_code=400)
        if name.endswith((".csv", ".tsv")):
            from tweetcls.datamodules.files import table_rows
            from tweetcls.core.errors import UsageError

            try:  # the CLI's reader: a row whose field count differs from the header's, or a column named
                # twice, is refused (csv.DictReader cut "hello, world" to "hello" without a word)
                rows = list(table_rows(io.StringIO(text, newline=""), file.filename or "the file",
                                       "\t" if name.endswith(".tsv") else ","))
            except UsageError as err:
                return JSONResponse({"error": str(err)}, status_code=400)
            if rows and "text" not in rows[0]:
                return JSONResponse({"error": f"the table has no 'text' column (columns: {', '.join(rows[0])})"},
                                    status_code=400)
            if rows and "id" in rows[0]:  # two rows of one id: refused as predict.py refuses them (they passed)
                from tweetcls.prediction_files import UniqueIds

                where = file.filename or "the file"
                unique = UniqueIds(where, "id")
                try:
                    for n, row in enumerate(rows, start=1):
                        unique.check(row["id"], n)
                except UsageError as err:
                    return JSONResponse({"error": str(err)}, status_code=422)
                # a blank id is answered as its row number (below): with a row of that very id, two answer
                # rows had one id again ("2,happy" and ",sad" both came back as id 2)
                given = {str(row["id"]): n for n, row in enumerate(rows, start=1) if row["id"] not in ("", None)}
                clash = next((n for n, row in enumerate(rows, start=1) if row["id"] in ("", None) and str(n) in given),
                             None)
                if clash is not None:
                    return JSONResponse({"error": f"{where}: row {clash} has a blank id, answered as its row number "
                                                  f"{clash}, which row {given[str(clash)]} has as its id (column 'id'); "
                                                  "make the ids unique"}, status_code=422)
            texts = [r.get("text") or "" for r in rows]
            ids = [r.get("id") or n for n, r in enumerate(rows, start=1)]
        else:  # .txt, or any other name: one text a line
            from tweetcls.datamodules.files import split_lines

            texts = split_lines(text)  # "\r", "\n" and "\r\n" end a line, as in predict.py's .txt input
            ids = list(range(1, len(texts) + 1))
        if len(texts) > limits.max_file_texts:
            return JSONResponse({"error": f"the file has {len(texts)} texts; the limit is {limits.max_file_texts}"},
                                status_code=413)
        too_long = [n for n, t in enumerate(texts) if len(t) > limits.max_chars]
        if too_long:  # the JSON rule: refused, never cut (a cut text's answer is for a text nobody wrote)
            n = too_long[0]
            if name.endswith((".csv", ".tsv")):
                where = f"row {n + 1}" + (f" (id {ids[n]})" if ids[n] != n + 1 else "")
            else:
                where = f"line {n + 1}"
            if len(too_long) > 1:
                where += f" (and {len(too_long) - 1} more texts)"
            return JSONResponse({"error": f"{where}: {too_long_in_words(limits, predictor.max_length, len(texts[n]))}"},
                                status_code=422)
        results = await batcher.submit(texts) if texts else []
        body = predictions_csv(ids, texts, results, predictor.label_names)
        stem = Path(file.filename or "texts").stem or "texts"
        return Response(body, media_type="text/csv",
                        headers={"Content-Disposition": attachment(f"{stem}-predictions.csv")})

    card = {**card, "limits": limits_in_words(limits, predictor.max_length)}

    @app.get("/model")
    async def model_card() -> dict:
        return card

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        return Health(status="ok", worker=os.getpid())

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app


def _not_unicode(body: bytes) -> str | None:
    """Why ``body`` cannot be read as JSON text at all (a Latin-1 "café" sent with charset=latin-1), or
    None: JSON travels as UTF-8 (or UTF-16/32, which json reads too)."""
    try:
        json.loads(body)
    except UnicodeDecodeError as err:
        return (f"body: byte {err.start} (0x{body[err.start]:02x}) is not UTF-8; send the JSON encoded as UTF-8 "
                "(a Content-Type charset is not read)")
    except ValueError:
        return None
    return None


def _repeated_key(body: bytes) -> str | None:
    """The first key a JSON object in ``body`` names twice, or None (also for a body that is not JSON:
    the request's own validation answers that)."""
    found: list[str] = []

    def pairs(items):
        keys = [k for k, _ in items]
        found.extend(k for k in keys if keys.count(k) > 1)
        return dict(items)

    try:
        json.loads(body, object_pairs_hook=pairs)
    except ValueError:
        return None
    return found[0] if found else None


def attachment(name: str) -> str:
    """A Content-Disposition for any file name: headers are Latin-1, so the name travels UTF-8 and
    percent-encoded in ``filename*`` (RFC 5987/6266), with an ASCII stand-in in ``filename`` for old clients."""
    plain = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def limits_in_words(limits: Limits, max_tokens: int) -> dict[str, str]:
    """The limits as the page states them before a request, and the errors name them after one."""
    return {"texts": f"at most {limits.max_texts:,} texts per request",
            "chars": f"a text longer than {limits.max_chars:,} characters is refused; "
                     f"the model reads the first {max_tokens:,} tokens",
            "file": f"a file of at most {limits.max_file_texts:,} texts and {limits.max_body_bytes:,} bytes "
                    f"(a text longer than {limits.max_chars:,} characters is refused there too)"}


def too_long_in_words(limits: Limits, max_tokens: int, length: int) -> str:
    """The one answer to a text over --max-chars, sent as JSON or in a file: the limit, the text's
    length, and the two ways out (the limit is the server's, set when it starts)."""
    return (f"{limits_in_words(limits, max_tokens)['chars']} (this one has {length:,}); shorten or split it, "
            f"or start serve.py with a larger --max-chars")


def _in_words(error: dict, limits: Limits, max_tokens: int) -> str:
    """One line naming the problem: the limits in the page's words, anything else where pydantic found it."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    kind, words = error.get("type"), limits_in_words(limits, max_tokens)
    if kind == "json_invalid":
        return "body: the body is not valid JSON"
    if loc == ["texts"] and kind == "too_long":
        return f"{words['texts']}; this one has {error.get('ctx', {}).get('actual_length', 'more')}: " \
               f"send them in several requests, or as a file"
    if loc == ["texts"] and kind == "too_short":
        return "texts: send at least one text"
    if len(loc) == 2 and loc[0] == "texts" and kind == "string_too_long":
        return f"text {loc[1] + 1}: {too_long_in_words(limits, max_tokens, len(error.get('input', '')))}"
    return f"{'.'.join(map(str, loc)) or 'body'}: {error.get('msg', 'invalid request')}"


def _prediction(result: dict) -> Prediction:
    return Prediction(label=result["label"], labels=result.get("labels"), probability=result["probability"],
                      probabilities=result["probabilities"], empty=result["empty"],
                      uncertain=result["label"] == "uncertain")
