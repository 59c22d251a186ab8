"""The HTTP service: `create_app(settings)` builds a FastAPI app around a generation Service; uvicorn's workers
call `app_from_environment()`. The routes live in serving/routes/ (images, text, models, health, the web page),
what they are given in serving/dependencies.py, the error answers in serving/errors.py and the middleware that
limits bodies, counts and logs every response in serving/middleware.py."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from aigc.serving.access import KeyRing, RateLimiter, read_key_file
from aigc.serving.errors import exception_handlers
from aigc.serving.logs import LOG_CONFIG, json_logger
from aigc.serving.metrics import Metrics
from aigc.serving.middleware import Observed
from aigc.serving.routes import routers
from aigc.serving.service import Service
from aigc.serving.settings import ServeSettings, load_settings

__all__ = ["LOG_CONFIG", "app_from_environment", "create_app", "json_logger"]


def app_from_environment() -> FastAPI:
    """The app of a uvicorn worker process, from the AIGC_SERVE_* variables `aigc serve` exported."""
    return create_app(load_settings())


def create_app(settings: ServeSettings) -> FastAPI:
    """The app serving `settings.models`: its state (settings, service, metrics, keys, rate limiter) on
    `app.state`, where the routes' dependencies find it."""
    app = FastAPI(
        title="aigc",
        summary="Generate images and text with trained aigc models.",
        lifespan=lifespan,
        exception_handlers=exception_handlers(),
    )
    state = app.state
    state.settings, state.metrics, state.log = settings, Metrics(), json_logger()
    state.service = Service(
        settings.models, state.metrics, settings.queue_size, settings.max_batch, settings.device, settings.threads
    )
    hashes = dict.fromkeys(settings.api_key_hashes, "env")
    if settings.api_keys:
        hashes |= read_key_file(settings.api_keys)
    state.keys, state.limiter = KeyRing(hashes), RateLimiter(settings.rate, settings.burst)
    for router in routers(settings):
        app.include_router(router)
    app.add_middleware(Observed, metrics=state.metrics, log=state.log, max_body=settings.max_body_bytes)
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    """Loads the models in the background (/readyz turns 200 when done); at the end, once uvicorn has let the
    requests in flight finish, stops the service."""
    state = app.state
    state.service.start()
    fields = {"models": list(state.settings.models), "keys": len(state.keys.hashes)}
    state.log.info("started", extra={"fields": fields})
    yield
    await asyncio.to_thread(state.service.close)
    state.metrics.close()
    state.log.info("stopped")
