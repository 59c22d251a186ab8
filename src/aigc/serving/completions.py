"""The wire format of /v1/completions and /v1/chat/completions, in the shape of OpenAI's APIs so that their
clients work unchanged: the request schemas (OpenAI's fields, plus aigc's `top_k` and `repetition_penalty`,
derived from the language-model family's sample config), the job a request asks for, and the response - one
JSON body, or server-sent events of text chunks ending in `data: [DONE]` (with the usage before it when
`stream_options.include_usage` is set).

A chat request is a completion of the prompt the model's chat template writes for the conversation, ending at
the template's end-of-turn token. A conversation over the model's context is trimmed from its oldest message,
whole messages at a time (families/text.py:fitted_chat_prompt); one whose newest message alone is over is refused;
a reply ends where the context does (finish_reason "length"), never pushing the conversation's start out of view. An
assistant (assistant.py) puts its system message of intent and retrieved pairs first. What aigc adds to OpenAI's
fields is one object, `aigc`: the assistant's intent and retrieved pair ids, how many messages were trimmed - in
the body, and in a stream's first event of each choice. /v1/completions on an assistant is its generator's, the
prompt as given. With --mask-prompts, customer data in the messages and prompts is
replaced by placeholders before the model (or the assistant) reads it."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from aigc.core.errors import ConfigError, UserError
from aigc.data.masking import default_masker
from aigc.families.registry import sample_setting_names, with_sample
from aigc.families.text import fitted_chat_prompt
from aigc.serving.schemas import MAX_SEED, sample_fields, served_model
from aigc.serving.service import Job, ServedModel
from aigc.serving.settings import ServeSettings

MAX_STOPS = 4  # as OpenAI allows
MAX_LOGPROBS = 20  # alternatives per token, as OpenAI's chat API allows
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


def common_fields(model_names: list[str], settings: ServeSettings) -> dict:
    """What both routes take: the model, how many completions and their seeds, stop strings, streaming, and the
    sample settings."""
    return dict(
        model=(str | None, Field(None, description="served model (see /v1/models); optional when one is served")),
        n=(int, Field(1, ge=1, le=settings.max_n, description="completions per prompt")),
        seed=(Seed | None, Field(None, description="completion j of each prompt uses seed + j (default: random)")),
        stop=(
            str | list[str] | None,
            Field(None, description=f"up to {MAX_STOPS} strings; a completion ends where one begins"),
        ),
        stream=(bool, Field(False, description="send the text as server-sent events while it is drawn")),
        stream_options=(StreamOptions | None, Field(None, description="include_usage: a last event with the usage")),
        **sample_fields("text"),
    )


def completion_model(model_names: list[str], settings: ServeSettings) -> type[BaseModel]:
    """The pydantic model of a completion request, with the server's limits built in."""
    return create_model(
        "CompletionRequest",
        __config__=ConfigDict(extra="forbid"),
        prompt=(str | list[str], Field(description="the text to continue, or a list of them")),
        echo=(bool, Field(False, description="the prompt before each completion (with its logprobs, if asked)")),
        logprobs=(
            int | None,
            Field(None, ge=0, le=MAX_LOGPROBS, description="each token's log-probability and this many alternatives"),
        ),
        **common_fields(model_names, settings),
    )


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str


def chat_model(model_names: list[str], settings: ServeSettings) -> type[BaseModel]:
    """The pydantic model of a chat completion request, with the server's limits built in."""
    return create_model(
        "ChatCompletionRequest",
        __config__=ConfigDict(extra="forbid"),
        messages=(list[Message], Field(min_length=1, description="the conversation so far")),
        logprobs=(bool, Field(False, description="each token's log-probability")),
        top_logprobs=(
            int | None,
            Field(None, ge=0, le=MAX_LOGPROBS, description="with logprobs: this many alternatives per token"),
        ),
        max_completion_tokens=(int | None, Field(None, description="OpenAI's newer name of max_tokens")),
        **common_fields(model_names, settings),
    )


def to_job(
    request: BaseModel, served: ServedModel, prompts: list[str], settings: ServeSettings, logprobs, on_text=None
) -> Job:
    """The completions a valid request asks for (prompt i's completion j is output i * n + j), with the model's
    sampling defaults filled in; UserError (422) for what the schema alone cannot tell."""
    if not prompts:
        raise UserError("prompt is an empty list; give a string or a list of strings")
    if len(prompts) * request.n > settings.max_n:
        raise UserError(f"{len(prompts)} prompts x n {request.n} completions; this server allows {settings.max_n}")
    # counted as the model reads them (a conversation as its chat template writes it); the body limit bounds the work;
    # each prompt tokenised once, for the engine and the usage too
    encoded = {prompt: served.family.encode(served.model, prompt) for prompt in dict.fromkeys(prompts)}
    longest = max(len(ids) for ids in encoded.values())
    if longest > settings.max_prompt_tokens:
        raise UserError(f"the prompt is {longest} tokens; this server allows {settings.max_prompt_tokens}")
    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if len(stop) > MAX_STOPS or not all(stop):
        raise ConfigError("stop", request.stop, f"give at most {MAX_STOPS} non-empty strings")
    given = {
        name: getattr(request, name) for name in sample_setting_names("text") if getattr(request, name) is not None
    }
    sample = with_sample(served.config, {**given, "stop": tuple(stop), "logprobs": logprobs}).sample
    if sample.max_tokens > settings.max_tokens:
        raise ConfigError("max_tokens", sample.max_tokens, f"this server allows at most {settings.max_tokens}")
    first = secrets.randbelow(2**31) if request.seed is None else request.seed
    if first + request.n - 1 > MAX_SEED:
        raise UserError(f"seed {first} + n {request.n} runs past the largest seed {MAX_SEED}")
    seeds = [first + j for _ in prompts for j in range(request.n)]
    conditions = [prompt for prompt in prompts for _ in range(request.n)]
    return Job(served.name, sample, seeds, conditions, on_text or ignore, encoded=encoded)


def completion_job(request: BaseModel, models: dict[str, ServedModel], settings: ServeSettings, on_text=None) -> Job:
    served = served_model(request, models, "text")
    prompts = [request.prompt] if isinstance(request.prompt, str) else list(request.prompt)
    if settings.mask_prompts:
        prompts = [default_masker().mask(prompt) for prompt in prompts]
    return to_job(request, served, prompts, settings, request.logprobs, on_text)


def chat_job(request: BaseModel, models: dict[str, ServedModel], settings: ServeSettings, on_text=None) -> Job:
    served = served_model(request, models, "text")
    if request.max_completion_tokens is not None:
        if request.max_tokens is not None and request.max_tokens != request.max_completion_tokens:
            raise UserError("max_tokens and max_completion_tokens differ; give one of them")
        request = request.model_copy(update={"max_tokens": request.max_completion_tokens})
    logprobs = (request.top_logprobs or 0) if request.logprobs else None
    if request.top_logprobs is not None and not request.logprobs:
        raise UserError("top_logprobs needs logprobs: true")
    messages = [message.model_dump() for message in request.messages]
    if settings.mask_prompts:
        messages = [{**message, "content": default_masker().mask(message["content"])} for message in messages]
    extension = {}
    if served.assistant is not None:
        messages, context = served.assistant.prompt(messages)
        extension["assistant"] = context.extension()
    try:
        prompt, dropped = fitted_chat_prompt(
            served.family, served.model, served.config, messages, settings.max_prompt_tokens
        )
    except UserError as error:
        if served.assistant is None:
            raise
        raise UserError(
            f"{error} (the assistant's retrieved answers are among them: aigc assistant create --answers)"
        ) from None
    if dropped:
        extension["trimmed_messages"] = dropped
    job = to_job(request, served, [prompt], settings, logprobs, on_text)
    # the reply ends at the context ("length"), where the engine would otherwise crop the conversation's start
    room = served.family.info(served.model, served.config)["context"] - len(job.encoded[prompt])
    job.sample = dataclasses.replace(job.sample, max_tokens=min(job.sample.max_tokens, room))
    job.extension = extension
    return job


def ignore(k: int, text: str) -> None:
    """A non-streamed completion's text arrives whole at the end (the service still times its first token)."""


class Reply:
    """The response of one completion request: its id, and the body or the event stream."""

    object, chunk_object, id_prefix = "text_completion", "text_completion", "cmpl"

    def __init__(self, job: Job, served: ServedModel, request: BaseModel):
        self.job, self.served, self.request = job, served, request
        self.prompts = job.conditions[:: request.n]  # each prompt once, as OpenAI counts its tokens
        self.id = f"{self.id_prefix}-{secrets.token_hex(12)}"
        self.created = int(time.time())
        options = request.stream_options
        self.include_usage = bool(options and options.include_usage)

    def head(self, object: str) -> dict:
        return {"id": self.id, "object": object, "created": self.created, "model": self.job.model}

    def extension(self) -> dict:
        """What aigc adds to OpenAI's fields, as `aigc` (nothing when there is nothing to add)."""
        return {"aigc": self.job.extension} if self.job.extension else {}

    def usage(self, completions) -> dict:
        prompt_tokens = sum(len(self.job.encoded[prompt]) for prompt in self.prompts)
        completion_tokens = sum(c.tokens for c in completions)
        total = prompt_tokens + completion_tokens
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}

    def body(self, completions) -> dict:
        choices = [self.choice(k, c) for k, c in enumerate(completions)]
        body = {**self.head(self.object), "choices": choices, "usage": self.usage(completions)}
        return body | self.extension()

    def choice(self, index: int, completion) -> dict:
        text, logprobs = completion.text, None
        prompt = self.job.conditions[index]
        if self.request.echo:
            text = prompt + text
        if completion.logprobs is not None:
            entries = list(completion.logprobs)
            if self.request.echo:
                family, model = self.served.family, self.served.model
                entries = family.prompt_logprobs(model, prompt, self.job.sample.logprobs) + entries
            logprobs = legacy_logprobs(entries)
        return {"text": text, "index": index, "logprobs": logprobs, "finish_reason": completion.finish_reason}

    def chunk(self, index: int, text: str) -> str:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": None}
        return event({**self.head(self.chunk_object), "choices": [choice]})

    def finish(self, index: int, completion) -> dict:
        return {"text": "", "index": index, "logprobs": None, "finish_reason": completion.finish_reason}

    def opening(self) -> str:
        return ""

    def ending(self, completions) -> str:
        """The last events: each completion's finish reason, the usage when asked for, [DONE]."""
        head = self.head(self.chunk_object)
        events = "".join(event({**head, "choices": [self.finish(k, c)]}) for k, c in enumerate(completions))
        if self.include_usage:
            events += event({**head, "choices": [], "usage": self.usage(completions)})
        return events + "data: [DONE]\n\n"


class ChatReply(Reply):
    """The response of one chat completion request."""

    object, chunk_object, id_prefix = "chat.completion", "chat.completion.chunk", "chatcmpl"

    def choice(self, index: int, completion) -> dict:
        logprobs = None if completion.logprobs is None else {"content": chat_logprobs(completion.logprobs)}
        message = {"role": "assistant", "content": completion.text}
        return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": completion.finish_reason}

    def opening(self) -> str:
        """The first events: each choice's role, as OpenAI sends it before any content."""
        head = self.head(self.chunk_object) | self.extension()
        role = [{"index": k, "delta": {"role": "assistant"}, "finish_reason": None} for k in range(len(self.job.seeds))]
        return "".join(event({**head, "choices": [choice]}) for choice in role)

    def chunk(self, index: int, text: str) -> str:
        choice = {"index": index, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
        return event({**self.head(self.chunk_object), "choices": [choice]})

    def finish(self, index: int, completion) -> dict:
        return {"index": index, "delta": {}, "logprobs": None, "finish_reason": completion.finish_reason}


def legacy_logprobs(entries) -> dict:
    """The Completions API's logprobs object (the first prompt token of an echo has none)."""
    offsets, position = [], 0
    for entry in entries:
        offsets.append(position)
        position += len(entry.token)
    return {
        "tokens": [e.token for e in entries],
        "token_logprobs": [e.logprob for e in entries],
        "top_logprobs": [None if e.logprob is None else dict(e.top) for e in entries],
        "text_offset": offsets,
    }


def chat_logprobs(entries) -> list[dict]:
    """The Chat Completions API's logprobs content: each token with its bytes and its alternatives."""

    def described(token: str, logprob: float) -> dict:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    return [{**described(e.token, e.logprob), "top_logprobs": [described(t, v) for t, v in e.top]} for e in entries]


def event(data: dict) -> str:
    return f"data: {json.dumps(data)}\n\n"
