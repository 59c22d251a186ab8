"""The HTTP routes, one router per concern, each built for the app's settings (the request schemas carry the
served models and the server's limits): images (POST /v1/generate), text (POST /v1/completions and
/v1/chat/completions, in OpenAI's shapes), labels (POST /v1/classify), items (POST /v1/recommend), models (GET
/v1/models, /v1/models/{model} and the training reports), health (/healthz, /readyz, /metrics) and the web page
at /."""

from __future__ import annotations

from fastapi import APIRouter

from aigc.serving.routes import health, images, items, labels, models, page, text
from aigc.serving.settings import ServeSettings


def routers(settings: ServeSettings) -> list[APIRouter]:
    return [
        images.router(settings),
        text.router(settings),
        labels.router(settings),
        items.router(settings),
        models.router(),
        health.router(),
        page.router(),
    ]
