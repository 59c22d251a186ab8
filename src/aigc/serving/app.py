"""The HTTP service: `create_app(settings)` builds a FastAPI app around a generation Service; uvicorn's workers
call `app_from_environment()`. Routes: POST /v1/generate (images), POST /v1/completions and
/v1/chat/completions (text, OpenAI's shapes), GET /v1/models, /healthz, /readyz, /metrics and the web page at /.

Every response is counted in Prometheus and logged as one JSON line (caller by key name, never the key)."""

import asyncio
import contextlib
import json
import logging
import math
import time
import traceback
from importlib import resources
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from aigc.core.errors import ConfigError, UserError
from aigc.serving import completions
from aigc.serving.access import KeyRing, RateLimiter, read_key_file
from aigc.serving.metrics import Metrics
from aigc.serving.schemas import encode, headers, request_model, to_job
from aigc.serving.service import NotReady, QueueFull, Service
from aigc.serving.settings import ServeSettings, load_settings

LOADING_RETRY_SECONDS = 5


def app_from_environment() -> FastAPI:
    """The app of a uvicorn worker process, from the AIGC_SERVE_* variables `aigc serve` exported."""
    return create_app(load_settings())


def create_app(settings: ServeSettings) -> FastAPI:
    log = json_logger()
    metrics = Metrics()
    service = Service(
        settings.models, metrics, settings.queue_size, settings.max_batch, settings.device, settings.threads
    )
    hashes = dict.fromkeys(settings.api_key_hashes, "env")
    if settings.api_keys:
        hashes |= read_key_file(settings.api_keys)
    keys = KeyRing(hashes)
    limiter = RateLimiter(settings.rate, settings.burst)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()  # loads the models in the background; /readyz turns 200 when done
        log.info("started", extra={"fields": {"models": list(settings.models), "keys": len(hashes)}})
        yield
        await asyncio.to_thread(service.close)  # uvicorn has let the requests in flight finish first
        metrics.close()
        log.info("stopped")

    app = FastAPI(title="aigc", summary="Generate images and text with trained aigc models.", lifespan=lifespan)
    app.add_middleware(Observed, metrics=metrics, log=log, max_body=settings.max_body_bytes)

    Caller = Annotated[str, Depends(caller_of(keys, limiter, settings))]
    GenerateRequest = request_model(list(settings.models), settings)

    CompletionRequest = completions.completion_model(list(settings.models), settings)
    ChatRequest = completions.chat_model(list(settings.models), settings)

    # The body is parsed here rather than by FastAPI so that it is JSON whatever its Content-Type says
    # (`curl -d` sends form encoding) and so that a bad key is a 401 before the body is looked at.
    def request_body(schema: type) -> dict:
        return {
            "requestBody": {"content": {"application/json": {"schema": schema.model_json_schema()}}, "required": True}
        }

    async def parsed(request: Request, schema: type):
        try:
            return schema.model_validate_json(await request.body())
        except ValidationError as error:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
            raise RequestValidationError(errors) from None

    @app.post(
        "/v1/generate",
        response_class=Response,
        responses=GENERATE_RESPONSES,
        openapi_extra=request_body(GenerateRequest),
    )
    async def generate(request: Request, who: Caller) -> Response:
        """Draw images; the seeds used come back in the X-Aigc-Seeds header (and in the body as JSON)."""
        body = await parsed(request, GenerateRequest)
        job = to_job(body, service.loaded(), settings)
        service.check(job)
        request.state.fields = {"model": job.model, "images": len(job.seeds)}
        images = await asyncio.wrap_future(service.submit(job))
        content, media_type = await asyncio.to_thread(encode, images, job, body.format)
        return Response(content, media_type=media_type, headers=headers(job))

    async def text_reply(request: Request, schema: type, to_job, reply_type) -> Response:
        body = await parsed(request, schema)
        loop, events = asyncio.get_running_loop(), asyncio.Queue()

        def on_text(k: int, text: str) -> None:  # called on the generation thread
            loop.call_soon_threadsafe(events.put_nowait, (k, text))

        models = service.loaded()
        job = to_job(body, models, settings, on_text if body.stream else None)
        service.check(job)
        reply = reply_type(job, models[job.model], body)
        request.state.fields = {"model": job.model, "completions": len(job.seeds)}
        done = asyncio.wrap_future(service.submit(job))
        if not body.stream:
            return JSONResponse(await asyncio.to_thread(reply.body, await done))
        return StreamingResponse(stream(reply, events, done), media_type="text/event-stream")

    @app.post("/v1/completions", responses=COMPLETION_RESPONSES, openapi_extra=request_body(CompletionRequest))
    async def complete(request: Request, who: Caller) -> Response:
        """Continue prompts with a language model, as OpenAI's Completions API does; `stream` sends server-sent
        events as the text is drawn."""
        return await text_reply(request, CompletionRequest, completions.completion_job, completions.Reply)

    @app.post("/v1/chat/completions", responses=COMPLETION_RESPONSES, openapi_extra=request_body(ChatRequest))
    async def chat(request: Request, who: Caller) -> Response:
        """The next assistant turn of a conversation, as OpenAI's Chat Completions API answers it (the model's
        chat template writes the prompt; the turn ends at its end-of-turn token)."""
        return await text_reply(request, ChatRequest, completions.chat_job, completions.ChatReply)

    @app.get("/v1/models")
    def models(who: Caller) -> dict:
        """The served models in the shape of OpenAI's model list (`data`), each with what a client needs to build
        a request (sample settings and their bounds, classes or context)."""
        return {"object": "list", "data": [served.listing() for served in service.loaded().values()]}

    @app.get("/v1/models/{name}/report", response_class=HTMLResponse)
    def report(name: str, who: Caller) -> str:
        """The model's training report (aigc report RUN_DIR writes it into the run directory)."""
        served = service.loaded().get(name)
        if served is None:
            raise HTTPException(404, f"no model {name!r} is served; see /v1/models")
        if served.report is None:
            raise HTTPException(404, f"no report for {name!r}; make one with: aigc report RUN_DIR")
        return served.report.read_text()

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict:
        service.loaded()
        return {"status": "ready", "models": list(settings.models)}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    web_page = resources.files("aigc.serving").joinpath("static/index.html").read_text()

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return web_page

    answer_errors(app)
    return app


async def stream(reply, events: asyncio.Queue, done: asyncio.Future):
    """The server-sent events of a streamed completion: each piece of text as it is drawn, then the ending. The
    pieces are queued on the loop before the result is, so none is left behind when `done` completes. A client
    that goes away cancels the job: its completions leave the decode batch at the next step."""
    try:
        opening = reply.opening()
        if opening:
            yield opening
        while True:
            piece = asyncio.ensure_future(events.get())
            finished, _ = await asyncio.wait({piece, done}, return_when=asyncio.FIRST_COMPLETED)
            if piece not in finished:
                piece.cancel()
                break
            yield reply.chunk(*piece.result())
        while not events.empty():
            yield reply.chunk(*events.get_nowait())
        try:
            yield reply.ending(done.result())
        except Exception as error:  # the status line is sent: the failure can only be an event
            yield completions.event({"error": {"message": str(error), "type": type(error).__name__}})
    finally:
        if not done.done():
            reply.job.cancelled = True


def caller_of(keys: KeyRing, limiter: RateLimiter, settings: ServeSettings):
    """The dependency that names a request's caller: the API key's name (or the client address when the server
    has no keys), after the rate limit."""

    def caller(request: Request) -> str:
        if keys.open:
            who = request.client.host if request.client else "unknown"
        else:
            scheme, _, key = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'", UNAUTHORIZED)
            who = keys.caller(key.strip())
            if who is None:
                raise HTTPException(401, "API key not recognised; check it, or ask for a new one", UNAUTHORIZED)
        request.state.caller = who
        wait = limiter.take(who)
        if wait:
            retry = math.ceil(wait)
            detail = f"rate limit of {settings.rate:g} requests a minute exceeded; retry in {retry} s"
            raise HTTPException(429, detail, {"Retry-After": str(retry)})
        return who

    return caller


# OpenAI's error types, so that its clients raise their own exception with our message
ERROR_TYPES = {401: "authentication_error", 404: "not_found_error", 422: "invalid_request_error",
               429: "rate_limit_error", 503: "server_overloaded"}  # fmt: skip


def refusal(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    """An error answer: `detail` (and the `field` it names), and the same as OpenAI's `error` object."""
    named = {"field": field} if field is not None else {}
    error = {"message": message, "type": ERROR_TYPES.get(status, "error"), "param": field, "code": None}
    return JSONResponse({"detail": message, **named, "error": error}, status, headers)


def answer_errors(app: FastAPI) -> None:
    """Our exceptions as HTTP answers: a user error is a 422 (naming the field of a config error), a full
    queue or models still loading a 503 with Retry-After; refused keys and rates (401, 429) and unknown pages
    (404) in the same shape."""

    @app.exception_handler(UserError)
    async def user_error(request: Request, error: UserError) -> JSONResponse:
        return refusal(422, str(error), error.field if isinstance(error, ConfigError) else None)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
        return refusal(503, str(error), headers={"Retry-After": str(error.retry_after)})

    @app.exception_handler(NotReady)
    async def not_ready(request: Request, error: NotReady) -> JSONResponse:
        return refusal(503, str(error), headers={"Retry-After": str(LOADING_RETRY_SECONDS)})

    @app.exception_handler(HTTPException)
    async def refused(request: Request, error: HTTPException) -> JSONResponse:
        return refusal(error.status_code, str(error.detail), headers=error.headers)


UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
COMPLETION_RESPONSES = {
    200: {"content": {"application/json": {}, "text/event-stream": {}}, "description": "the completions"},
    401: {"description": "missing or unknown API key"},
    422: {"description": "a field is invalid for this server or model"},
    429: {"description": "over the rate limit; see Retry-After"},
    503: {"description": "queue full or models loading; see Retry-After"},
}
GENERATE_RESPONSES = {
    200: {"content": {"image/png": {}, "application/zip": {}, "application/json": {}}, "description": "the images"},
    401: {"description": "missing or unknown API key"},
    413: {"description": "request body too large"},
    422: {"description": "a field is invalid for this server or model"},
    429: {"description": "over the rate limit; see Retry-After"},
    503: {"description": "queue full or models loading; see Retry-After"},
}


class Observed:
    """ASGI middleware: refuses bodies over `max_body` bytes (413) before the app reads them, then counts, times
    and logs every response."""

    def __init__(self, app, metrics: Metrics, log: logging.Logger, max_body: int):
        self.app = app
        self.metrics = metrics
        self.log = log
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500
        error = None

        async def send_observed(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
            if body is None:
                await self._refuse_large(send_observed)
            else:
                await self.app(scope, replay(body, receive), send_observed)
        except Exception as exc:
            error = exc
            raise
        finally:
            self._record(scope, status, time.perf_counter() - start, error)

    async def _read_body(self, scope, receive) -> bytes | None:
        """The whole body, or None when it is (or says it will be) larger than allowed."""
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return None
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse_large(self, send) -> None:
        detail = json.dumps({"detail": f"request body over {self.max_body} bytes; send a smaller request"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(detail)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": detail})

    def _record(self, scope, status: int, seconds: float, error: Exception | None) -> None:
        route = scope.get("route")
        name = getattr(route, "path", "unmatched")
        self.metrics.requests.labels(name, scope["method"], str(status)).inc()
        self.metrics.latency.labels(name, str(status)).observe(seconds)
        state = scope.get("state", {})
        fields = {
            "method": scope["method"],
            "route": name,
            "status": status,
            "ms": round(seconds * 1000, 1),
            "client": scope["client"][0] if scope.get("client") else None,
            "caller": state.get("caller"),
            **state.get("fields", {}),
        }
        if error is not None:
            fields["error"] = "".join(traceback.format_exception_only(error)).strip()
            self.log.error("request failed", extra={"fields": fields})
        else:
            self.log.info("request", extra={"fields": fields})


def replay(body: bytes, receive):
    """An ASGI receive that hands over the already-read body, then listens for the client leaving."""
    sent = False

    async def receive_replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_replayed


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, process id, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker, when uvicorn runs several
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


JsonFormatter.converter = time.gmtime

LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonFormatter}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "loggers": {
        "aigc.serve": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


def json_logger() -> logging.Logger:
    """The service's logger; uvicorn's log_config (LOG_CONFIG) gives it its JSON handler, and an app built
    without uvicorn (tests, embedding) gets one here."""
    log = logging.getLogger("aigc.serve")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log
