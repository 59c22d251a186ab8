"""The wire format of /v1/generate: the request schema, derived from the families' sample configs so that every
sampling setting `aigc sample` has is a request field with the same meaning and checks, and the three response
encodings."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import secrets
import zipfile
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, create_model

from aigc.core.config import describe_fields
from aigc.core.errors import ConfigError, UserError
from aigc.core.images import grid_png, image_png, per_seed_name
from aigc.families.registry import families_of, sample_setting_names, with_sample
from aigc.serving.errors import ModelNotFound
from aigc.serving.service import Job, ServedModel
from aigc.serving.settings import ServeSettings

FORMATS = {"png-grid": "image/png", "png-zip": "application/zip", "json": "application/json"}
DEFAULT_N = 16
MAX_SEED = 2**63 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


JSON_KINDS = {"int": int, "float": float, "bool": bool, "choice": str, "text": str}
JSON_BOUNDS = {"min": "minimum", "max": "maximum", "above": "exclusiveMinimum", "below": "exclusiveMaximum"}


def request_model(model_names: list[str], settings: ServeSettings) -> type[BaseModel]:
    """The pydantic model of a generate request, with the served model names and the server's limits built in.
    The sample settings of every family are fields; the schema checks their JSON types and documents their
    bounds, and the model's own sample config checks the values (so a bad value gets the message `aigc sample`
    gives, as a 422 naming the field)."""
    return create_model(
        "GenerateRequest",
        __config__=ConfigDict(extra="forbid", populate_by_name=True),
        model=(str | None, Field(None, description="served model (see /v1/models); optional when one is served")),
        n=(int | None, Field(None, ge=1, le=settings.max_n, description=f"images (default: {DEFAULT_N} or --max-n)")),
        seed=(Seed | None, Field(None, description="first seed; images use seed, seed+1, ... (default: random)")),
        seeds=(list[Seed] | None, Field(None, min_length=1, max_length=settings.max_n, description="explicit seeds")),
        class_label=(int | None, Field(None, ge=0, alias="class", description="draw only this class")),
        prompt=(str | None, Field(None, description="what to draw (a text-to-image model)")),
        format=(Literal[tuple(FORMATS)], Field("png-grid", description="png-grid | png-zip | json (base64 PNGs)")),
        **sample_fields("images"),
    )


def sample_fields(modality: str) -> dict[str, tuple]:
    """The sample settings of the families of `modality` as optional request fields (name -> (type, Field))."""
    fields: dict[str, tuple] = {}
    for family in families_of(modality):
        for entry in describe_fields(family.sample_config):
            bounds = {JSON_BOUNDS[k]: v for k, v in entry.items() if k in JSON_BOUNDS}
            if "choices" in entry:
                bounds["enum"] = entry["choices"]
            description = f"{family.name}: {entry['help']}; default: the model's"
            field = Field(None, description=description, json_schema_extra=bounds)
            fields.setdefault(entry["name"], (JSON_KINDS[entry["kind"]] | None, field))
    return fields


ROUTES = {
    "images": "/v1/generate",
    "text": "/v1/completions",
    "labels": "/v1/classify",
    "items": "/v1/recommend",
}  # by what a model makes


def served_model(request: BaseModel, models: dict[str, ServedModel], modality: str) -> ServedModel:
    """The model a request names (or the one served); ModelNotFound (404) when none has that name, UserError
    when the name is missing among several or the model draws something else."""
    if request.model is None and len(models) > 1:
        raise UserError(f"several models are served; name one in 'model': {', '.join(models)}")
    name = next(iter(models)) if request.model is None else request.model
    if name not in models:
        raise ModelNotFound(name)
    served = models[name]
    if served.family.modality != modality:
        route = ROUTES[served.family.modality]
        raise UserError(f"{served.name} generates {served.family.modality}, not {modality}; use {route}")
    return served


def to_job(request: BaseModel, models: dict[str, ServedModel], settings: ServeSettings) -> Job:
    """The work a valid request asks for, with the model's own sampling defaults filled in; UserError (422) for
    what the schema alone cannot tell: a missing model name, disagreeing n and seeds, too many pixels, a setting
    of another model family or a value the model's sample config refuses."""
    served = served_model(request, models, "images")
    seeds = _seeds(request, min(DEFAULT_N, settings.max_n))
    pixels = len(seeds) * served.family.info(served.model, served.config)["image_size"] ** 2
    if pixels > settings.max_pixels:
        raise UserError(
            f"{len(seeds)} images of this model are {pixels} pixels; this server allows {settings.max_pixels}"
        )
    names = sample_setting_names("images")
    given = {name: getattr(request, name) for name in names if getattr(request, name) is not None}
    sample = with_sample(served.config, given).sample
    if getattr(sample, "steps", 0) > settings.max_steps:
        raise ConfigError("steps", sample.steps, f"this server allows at most {settings.max_steps}")
    if served.family.conditions == "prompts":
        if request.prompt is None or request.class_label is not None:
            raise UserError(f"{served.name} draws what a prompt says; give 'prompt' (and no 'class')")
        return Job(served.name, sample, seeds, [request.prompt] * len(seeds), condition_key="prompts")
    if request.prompt is not None:
        raise UserError(f"{served.name} draws classes, not prompts; drop 'prompt'")
    if request.class_label is not None:
        labels = [request.class_label] * len(seeds)
    else:
        default = served.family.default_labels(served.model, seeds)
        labels = None if default is None else default.tolist()
    return Job(served.name, sample, seeds, labels)


def _seeds(request: BaseModel, default_n: int) -> list[int]:
    if request.seeds is not None:
        if request.seed is not None:
            raise UserError("give 'seed' (the first of n) or 'seeds' (a list), not both")
        if request.n is not None and request.n != len(request.seeds):
            raise UserError(f"n is {request.n} but seeds lists {len(request.seeds)}; drop n or make them agree")
        return list(request.seeds)
    n = request.n or default_n
    first = secrets.randbelow(2**31) if request.seed is None else request.seed
    if first + n - 1 > MAX_SEED:
        raise UserError(f"seed {first} + n {n} runs past the largest seed {MAX_SEED}")
    return list(range(first, first + n))


def encode(images: torch.Tensor, job: Job, format: str) -> tuple[bytes, str]:
    """(body, media type) of generated images: one PNG grid (as `aigc sample --out grid.png`), a zip of one PNG
    per seed (named as `aigc sample --out dir/` names them), or JSON with base64 PNGs."""
    if format == "png-grid":
        body = grid_png(images)
    elif format == "png-zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for image, seed in zip(images, job.seeds, strict=True):
                archive.writestr(per_seed_name(seed), image_png(image))
        body = buffer.getvalue()
    else:
        body = json.dumps(
            describe(job) | {"images": [base64.b64encode(image_png(i)).decode() for i in images]}
        ).encode()
    return body, FORMATS[format]


def describe(job: Job) -> dict[str, Any]:
    """What was drawn: the model, seeds, labels (or prompts) and resolved sampling settings (also sent as response
    headers)."""
    sample = dataclasses.asdict(job.sample)
    return {"model": job.model, "seeds": job.seeds, job.condition_key: job.conditions, "sample": sample}


def headers(job: Job) -> dict[str, str]:
    return {
        "X-Aigc-Model": job.model,
        "X-Aigc-Seeds": ",".join(map(str, job.seeds)),
        "X-Aigc-Sample": json.dumps(dataclasses.asdict(job.sample), separators=(",", ":")),
    }
