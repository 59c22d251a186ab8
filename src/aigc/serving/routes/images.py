"""POST /v1/generate: images drawn by an image model, as one PNG grid, a zip of one PNG per seed, or JSON."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response

from aigc.serving.dependencies import Caller, MetricsDep, ServiceDep, SettingsDep, parsed, request_body
from aigc.serving.errors import REFUSALS
from aigc.serving.schemas import encode, headers, request_model, to_job
from aigc.serving.settings import ServeSettings

GENERATE_RESPONSES = {
    200: {"content": {"image/png": {}, "application/zip": {}, "application/json": {}}, "description": "the images"},
    413: {"description": "request body too large"},
    **REFUSALS,
}


def router(settings: ServeSettings) -> APIRouter:
    """The images route, its request schema built from the served models and the server's limits."""
    routes = APIRouter()
    GenerateRequest = request_model(list(settings.models), settings)

    @routes.post(
        "/v1/generate",
        response_class=Response,
        responses=GENERATE_RESPONSES,
        openapi_extra=request_body(GenerateRequest),
    )
    async def generate(
        request: Request, who: Caller, service: ServiceDep, metrics: MetricsDep, settings: SettingsDep
    ) -> Response:
        """Draw images; the seeds used come back in the X-Aigc-Seeds header (and in the body as JSON)."""
        body = await parsed(request, GenerateRequest)
        job = to_job(body, service.loaded(), settings)
        service.check(job)
        request.state.fields = {"model": job.model, "images": len(job.seeds)}
        images = await asyncio.wrap_future(service.submit(job))
        metrics.images.labels(job.model).inc(len(images))
        content, media_type = await asyncio.to_thread(encode, images, job, body.format)
        return Response(content, media_type=media_type, headers=headers(job))

    return routes
