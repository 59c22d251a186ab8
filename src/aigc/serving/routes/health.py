"""GET /healthz (the process answers), /readyz (its models are loaded: 503 before) and /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from aigc.serving.dependencies import MetricsDep, ServiceDep, SettingsDep


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @routes.get("/readyz")
    def readyz(service: ServiceDep, settings: SettingsDep) -> dict:
        service.loaded()
        return {"status": "ready", "models": list(settings.models)}

    @routes.get("/metrics")
    def prometheus(metrics: MetricsDep) -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    return routes
