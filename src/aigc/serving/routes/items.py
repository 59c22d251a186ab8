"""POST /v1/recommend: the items a recommender ranks highest for a user it knows (`user`) or for a history of
liked items given by id or title (`history`), each with its score and the history items that weighed most.
Requests wait in the service's queue and merge with others for the same model and settings, as image requests
do; a recommendation depends on its history alone, never on the batch."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, create_model

from aigc.core.errors import UserError
from aigc.families.registry import sample_setting_names, with_sample
from aigc.serving.dependencies import Caller, MetricsDep, ServiceDep, SettingsDep, parsed, request_body
from aigc.serving.errors import REFUSALS
from aigc.serving.schemas import sample_fields, served_model
from aigc.serving.service import Job
from aigc.serving.settings import ServeSettings


def request_model(settings: ServeSettings) -> type[BaseModel]:
    """The pydantic model of a recommend request, with the server's limits built in."""
    name = Annotated[str, Field(min_length=1, max_length=settings.max_text_chars)]
    return create_model(
        "RecommendRequest",
        __config__=ConfigDict(extra="forbid"),
        model=(str | None, Field(None, description="served recommender (see /v1/models); optional when one is served")),
        user=(name | None, Field(None, description="a user id the model knows (or give history)")),
        history=(
            list[name] | None,
            Field(None, description=f"liked items, oldest first: ids or titles, up to {settings.max_history}"),
        ),
        **sample_fields("items"),
    )


def to_job(request: BaseModel, models: dict, settings: ServeSettings) -> Job:
    served = served_model(request, models, "items")
    if (request.user is None) == (request.history is None):
        raise UserError("give either user (an id the model knows) or history (liked items), not both or neither")
    if request.history is not None and not 1 <= len(request.history) <= settings.max_history:
        raise UserError(f"history: {len(request.history)} items; this server reads 1 to {settings.max_history}")
    family, model = served.family, served.model
    if request.user is not None:
        history = family.history(model, request.user)
    else:
        history = family.items_named(model, request.history)
    given = {name: getattr(request, name) for name in sample_setting_names("items")}
    sample = with_sample(served.config, {k: v for k, v in given.items() if v is not None}).sample
    return Job(served.name, sample, [0], [history], condition_key="histories")


def router(settings: ServeSettings) -> APIRouter:
    routes = APIRouter()
    RecommendRequest = request_model(settings)

    @routes.post("/v1/recommend", responses=REFUSALS, openapi_extra=request_body(RecommendRequest))
    async def recommend(
        request: Request, who: Caller, service: ServiceDep, metrics: MetricsDep, settings: SettingsDep
    ) -> dict:
        """Recommend items: each with its score and the history items that weighed most in it."""
        body = await parsed(request, RecommendRequest)
        models = service.loaded()
        job = await asyncio.to_thread(to_job, body, models, settings)
        service.check(job)
        request.state.fields = {"model": job.model, "history": len(job.conditions[0])}
        (items,) = await asyncio.wrap_future(service.submit(job))
        served = models[job.model]
        metrics.recommended.labels(job.model, "user" if body.user is not None else "given").inc()
        metrics.cold_recommended.labels(job.model).inc(sum(item["cold"] for item in items))
        return {
            "id": f"rec-{secrets.token_hex(12)}",
            "object": "recommendation",
            "model": job.model,
            "user": body.user,
            "history": [served.family.item(served.model, index) for index in job.conditions[0]],
            "items": items,
        }

    return routes
