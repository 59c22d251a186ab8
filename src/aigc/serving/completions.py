"""The wire format of /v1/completions, in the shape of OpenAI's (legacy) Completions API so that its clients
work unchanged: the request schema (OpenAI's fields, plus aigc's `top_k` and `repetition_penalty`, derived from
the language-model family's sample config), the job it asks for, and the response - one JSON body, or
server-sent events of text chunks ending in `data: [DONE]`."""

from __future__ import annotations

import json
import secrets
import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from aigc.core.errors import ConfigError, UserError
from aigc.families.registry import sample_setting_names, with_sample
from aigc.serving.schemas import MAX_SEED, sample_fields, served_model
from aigc.serving.service import Job, ServedModel
from aigc.serving.settings import ServeSettings

MAX_STOPS = 4  # as OpenAI allows
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


def completion_model(model_names: list[str], settings: ServeSettings) -> type[BaseModel]:
    """The pydantic model of a completion request, with the server's limits built in."""
    prompt = Annotated[str, Field(max_length=settings.max_prompt_chars)]
    return create_model(
        "CompletionRequest",
        __config__=ConfigDict(extra="forbid"),
        model=(
            Literal[tuple(model_names)] | None,
            Field(None, description="served model; optional when one is served"),
        ),
        prompt=(prompt | list[prompt], Field(description="the text to continue, or a list of them")),
        n=(int, Field(1, ge=1, le=settings.max_n, description="completions per prompt")),
        seed=(Seed | None, Field(None, description="completion j of each prompt uses seed + j (default: random)")),
        stop=(
            str | list[str] | None,
            Field(None, description=f"up to {MAX_STOPS} strings; a completion ends where one begins"),
        ),
        stream=(bool, Field(False, description="send the text as server-sent events while it is drawn")),
        **sample_fields("text"),
    )


def to_job(request: BaseModel, models: dict[str, ServedModel], settings: ServeSettings, on_text=None) -> Job:
    """The completions a valid request asks for (prompt i's completion j is output i * n + j), with the model's
    sampling defaults filled in; UserError (422) for what the schema alone cannot tell."""
    served = served_model(request, models, "text", "/v1/generate")
    prompts = [request.prompt] if isinstance(request.prompt, str) else list(request.prompt)
    if not prompts:
        raise UserError("prompt is an empty list; give a string or a list of strings")
    if len(prompts) * request.n > settings.max_n:
        raise UserError(f"{len(prompts)} prompts x n {request.n} completions; this server allows {settings.max_n}")
    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if len(stop) > MAX_STOPS or not all(stop):
        raise ConfigError("stop", request.stop, f"give at most {MAX_STOPS} non-empty strings")
    given = {
        name: getattr(request, name) for name in sample_setting_names("text") if getattr(request, name) is not None
    }
    sample = with_sample(served.config, {**given, "stop": tuple(stop)}).sample
    if sample.max_tokens > settings.max_tokens:
        raise ConfigError("max_tokens", sample.max_tokens, f"this server allows at most {settings.max_tokens}")
    first = secrets.randbelow(2**31) if request.seed is None else request.seed
    if first + request.n - 1 > MAX_SEED:
        raise UserError(f"seed {first} + n {request.n} runs past the largest seed {MAX_SEED}")
    seeds = [first + j for _ in prompts for j in range(request.n)]
    conditions = [prompt for prompt in prompts for _ in range(request.n)]
    return Job(served.name, sample, seeds, conditions, on_text or ignore)


def ignore(k: int, text: str) -> None:
    """A non-streamed completion's text arrives whole at the end (the service still times its first token)."""


class Reply:
    """The response of one completion request: its id, and the body or the event stream."""

    def __init__(self, job: Job, served: ServedModel, n: int):
        self.job, self.served = job, served
        self.prompts = job.conditions[::n]  # each prompt once, as OpenAI counts its tokens
        self.id = f"cmpl-{secrets.token_hex(12)}"
        self.created = int(time.time())

    def head(self) -> dict:
        return {"id": self.id, "object": "text_completion", "created": self.created, "model": self.job.model}

    def usage(self, completions) -> dict:
        tokenizer = self.served.model.tokenizer
        prompt_tokens = sum(len(tokenizer.encode(prompt)) for prompt in self.prompts)
        completion_tokens = sum(c.tokens for c in completions)
        total = prompt_tokens + completion_tokens
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}

    def body(self, completions) -> dict:
        choices = [
            {"text": c.text, "index": k, "logprobs": None, "finish_reason": c.finish_reason}
            for k, c in enumerate(completions)
        ]
        return {**self.head(), "choices": choices, "usage": self.usage(completions)}

    def chunk(self, index: int, text: str, finish_reason: str | None = None) -> str:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}
        return event({**self.head(), "choices": [choice]})

    def ending(self, completions) -> str:
        """The last events: each completion's finish reason, the usage, [DONE]."""
        finishes = "".join(self.chunk(k, "", c.finish_reason) for k, c in enumerate(completions))
        return finishes + event({**self.head(), "choices": [], "usage": self.usage(completions)}) + "data: [DONE]\n\n"


def event(data: dict) -> str:
    return f"data: {json.dumps(data)}\n\n"
