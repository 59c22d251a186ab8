"""What the routes are given (FastAPI dependencies): the app's settings, generation service and metrics from
`app.state` (set by `create_app`), the caller of a request after its key and rate are checked, and the request
body parsed against a route's schema."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from aigc.serving.access import KeyRing, RateLimiter
from aigc.serving.errors import UNAUTHORIZED, Refused
from aigc.serving.metrics import Metrics
from aigc.serving.service import Service
from aigc.serving.settings import ServeSettings


# async: a plain attribute read needs no trip to the thread pool (FastAPI runs a sync dependency there)
async def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_keys(request: Request) -> KeyRing:
    return request.app.state.keys


async def get_limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter


SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
ServiceDep = Annotated[Service, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def caller(
    request: Request,
    keys: Annotated[KeyRing, Depends(get_keys)],
    limiter: Annotated[RateLimiter, Depends(get_limiter)],
    settings: SettingsDep,
) -> str:
    """The name of a request's caller: the API key's name (or the client address when the server has no keys),
    after the rate limit; 401 for a missing or unknown key, 429 over the rate (with Retry-After)."""
    if keys.open:
        who = request.client.host if request.client else "unknown"
    else:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Refused(401, "missing API key: send 'Authorization: Bearer <key>'", headers=UNAUTHORIZED)
        who = keys.caller(key.strip())
        if who is None:
            message = "API key not recognised; check it, or ask for a new one"
            raise Refused(401, message, "invalid_api_key", UNAUTHORIZED)
    request.state.caller = who
    wait = limiter.take(who)
    if wait:
        retry = math.ceil(wait)
        message = f"rate limit of {settings.rate:g} requests a minute exceeded; retry in {retry} s"
        raise Refused(429, message, "rate_limit_exceeded", {"Retry-After": str(retry)})
    return who


Caller = Annotated[str, Depends(caller)]


# A body is parsed by the route rather than by FastAPI so that it is JSON whatever its Content-Type says
# (`curl -d` sends form encoding) and so that a bad key is a 401 before the body is looked at.
async def parsed(request: Request, schema: type[BaseModel]) -> BaseModel:
    """The request body validated by `schema`; a 422 naming each bad field (as FastAPI's own) otherwise."""
    try:
        return schema.model_validate_json(await request.body())
    except ValidationError as error:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def request_body(schema: type[BaseModel]) -> dict:
    """The OpenAPI `openapi_extra` of a route that parses its body with `parsed`."""
    content = {"application/json": {"schema": schema.model_json_schema()}}
    return {"requestBody": {"content": content, "required": True}}
