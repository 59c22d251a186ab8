"""How the service refuses: every error answer is JSON with aigc's `detail` (and the `field` it names) beside
OpenAI's `error` object (message, type, param, code), so that OpenAI's clients raise their own exception with
our message and code, and the web page and curl users read `detail`.

A user error is a 422 (naming the field of a config error), an unknown model a 404 `model_not_found`, a full
queue or models still loading a 503 with Retry-After; refused keys and rates (401, 429), unknown routes (404,
405) and invalid bodies (422, FastAPI's `detail` list kept) in the same shape."""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from aigc.core.errors import ConfigError, UserError
from aigc.serving.service import NotReady, QueueFull

LOADING_RETRY_SECONDS = 5
INTERNAL = "internal error; the server's log has the details"
UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}

# OpenAI's error types by status (its clients pick the exception class by status, and show `type` and `code`)
ERROR_TYPES = {429: "rate_limit_error", 503: "service_unavailable_error"}


class ModelNotFound(UserError):
    """A request names a model this server does not serve (404, as OpenAI answers it)."""

    def __init__(self, name: str):
        super().__init__(f"The model `{name}` does not exist.")
        self.name = name


class Refused(HTTPException):
    """A refusal of the access layer or a route, with OpenAI's `code` for its reason (e.g. invalid_api_key)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(status, message, headers)
        self.code = code


def refusal(
    status: int, message: str, field: str | None = None, headers: dict | None = None, code: str | None = None
) -> JSONResponse:
    """An error answer: `detail` (and the `field` it names), and the same as OpenAI's `error` object."""
    named = {"field": field} if field is not None else {}
    kind = ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    error = {"message": message, "type": kind, "param": field, "code": code}
    return JSONResponse({"detail": message, **named, "error": error}, status, headers)


async def user_error(request: Request, error: UserError) -> JSONResponse:
    return refusal(422, str(error), error.field if isinstance(error, ConfigError) else None)


async def model_not_found(request: Request, error: ModelNotFound) -> JSONResponse:
    return refusal(404, str(error), "model", code="model_not_found")


async def queue_full(request: Request, error: QueueFull) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after)}
    return refusal(503, str(error), headers=headers, code="server_is_overloaded")


async def not_ready(request: Request, error: NotReady) -> JSONResponse:
    return refusal(503, str(error), headers={"Retry-After": str(LOADING_RETRY_SECONDS)})


async def refused(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """Ours (Refused), FastAPI's and Starlette's own (an unknown route, a method it does not take)."""
    return refusal(error.status_code, str(error.detail), headers=error.headers, code=getattr(error, "code", None))


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    """A failure no other handler answers (a bug): OpenAI's `server_error`, the details in the server's log
    (Starlette logs the exception after this answer)."""
    return refusal(500, INTERNAL)


def streamed_error(error: Exception) -> dict:
    """OpenAI's `error` object of a failure after a stream's status line was sent: a user error says what it is;
    anything else is a `server_error` whose details go to the server's log."""
    if isinstance(error, UserError):
        return {"message": str(error), "type": "invalid_request_error", "param": None, "code": None}
    logging.getLogger("aigc.serve").error("a stream failed", exc_info=error)
    return {"message": INTERNAL, "type": "server_error", "param": None, "code": None}


async def invalid_body(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 (`detail`: the list of errors, each with its `loc`), with OpenAI's `error` naming the first."""
    errors = jsonable_encoder(error.errors())
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    param = ".".join(str(part) for part in first["loc"][1:]) or None  # after "body"
    message = f"{param}: {first['msg']}" if param else first["msg"]
    error_object = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return JSONResponse({"detail": errors, "error": error_object}, 422)


def exception_handlers() -> dict:
    """The handlers of FastAPI(exception_handlers=...); Starlette picks the most specific class of an exception."""
    return {
        UserError: user_error,
        ModelNotFound: model_not_found,
        QueueFull: queue_full,
        NotReady: not_ready,
        StarletteHTTPException: refused,
        RequestValidationError: invalid_body,
        Exception: internal_error,
    }


# The refusals of the routes that need a key, for the OpenAPI document
REFUSALS = {
    401: {"description": "missing or unknown API key"},
    404: {"description": "no such model is served (code model_not_found)"},
    422: {"description": "a field is invalid for this server or model"},
    429: {"description": "over the rate limit; see Retry-After"},
    503: {"description": "queue full or models loading; see Retry-After"},
}
