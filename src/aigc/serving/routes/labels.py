"""POST /v1/classify: the labels of texts by a classifier, with every label's probability, in the shape of
OpenAI's moderation API (`input`: a text or a list of them; one result per text, in order). Requests wait in the
service's queue and merge with others for the same model and settings, as image requests do, so texts are
labelled in batches; a label depends on its text alone, never on the batch."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, create_model

from aigc.core.errors import UserError
from aigc.data.masking import default_masker
from aigc.families.registry import sample_setting_names, with_sample
from aigc.serving.dependencies import Caller, MetricsDep, ServiceDep, SettingsDep, parsed, request_body
from aigc.serving.errors import REFUSALS
from aigc.serving.schemas import sample_fields, served_model
from aigc.serving.service import Job
from aigc.serving.settings import ServeSettings


def request_model(settings: ServeSettings) -> type[BaseModel]:
    """The pydantic model of a classify request, with the server's limits built in."""
    text = Annotated[str, Field(min_length=1, max_length=settings.max_text_chars)]
    return create_model(
        "ClassifyRequest",
        __config__=ConfigDict(extra="forbid"),
        model=(str | None, Field(None, description="served classifier (see /v1/models); optional when one is served")),
        input=(text | list[text], Field(description=f"a text, or a list of up to {settings.max_texts}")),
        **sample_fields("labels"),
    )


def to_job(request: BaseModel, models: dict, settings: ServeSettings) -> Job:
    texts = [request.input] if isinstance(request.input, str) else list(request.input)
    if not 1 <= len(texts) <= settings.max_texts:
        raise UserError(f"input: {len(texts)} texts; this server labels 1 to {settings.max_texts} per request")
    if settings.mask_prompts:
        texts = [default_masker().mask(text) for text in texts]
    served = served_model(request, models, "labels")
    given = {name: getattr(request, name) for name in sample_setting_names("labels")}
    sample = with_sample(served.config, {k: v for k, v in given.items() if v is not None}).sample
    return Job(served.name, sample, list(range(len(texts))), texts, condition_key="texts")


def router(settings: ServeSettings) -> APIRouter:
    routes = APIRouter()
    ClassifyRequest = request_model(settings)

    @routes.post("/v1/classify", responses=REFUSALS, openapi_extra=request_body(ClassifyRequest))
    async def classify(
        request: Request, who: Caller, service: ServiceDep, metrics: MetricsDep, settings: SettingsDep
    ) -> dict:
        """Label texts: each result has the most probable label and every label's probability."""
        body = await parsed(request, ClassifyRequest)
        models = service.loaded()
        job = to_job(body, models, settings)
        service.check(job)
        request.state.fields = {"model": job.model, "texts": len(job.seeds)}
        probabilities = await asyncio.wrap_future(service.submit(job))
        served = models[job.model]
        labels = served.family.labels(served.model)
        results = []
        for row in probabilities.tolist():
            best = max(range(len(labels)), key=row.__getitem__)
            results.append({"label": labels[best], "probabilities": dict(zip(labels, row, strict=True))})
            metrics.labelled.labels(job.model, labels[best]).inc()
        reply_id = f"clf-{secrets.token_hex(12)}"
        return {
            "id": reply_id,
            "object": "classification",
            "model": job.model,
            "labels": list(labels),
            "results": results,
        }

    return routes
