"""POST /v1/completions and /v1/chat/completions: a language model's text in the shapes of OpenAI's APIs, as one
JSON body or as server-sent events while it is drawn."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from aigc.serving import completions
from aigc.serving.dependencies import Caller, ServiceDep, SettingsDep, parsed, request_body
from aigc.serving.errors import REFUSALS, streamed_error
from aigc.serving.service import Service
from aigc.serving.settings import ServeSettings

COMPLETION_RESPONSES = {
    200: {"content": {"application/json": {}, "text/event-stream": {}}, "description": "the completions"},
    **REFUSALS,
}


def router(settings: ServeSettings) -> APIRouter:
    """The text routes, their request schemas built from the served models and the server's limits."""
    routes = APIRouter()
    CompletionRequest = completions.completion_model(list(settings.models), settings)
    ChatRequest = completions.chat_model(list(settings.models), settings)

    @routes.post("/v1/completions", responses=COMPLETION_RESPONSES, openapi_extra=request_body(CompletionRequest))
    async def complete(request: Request, who: Caller, service: ServiceDep, settings: SettingsDep) -> Response:
        """Continue prompts with a language model, as OpenAI's Completions API does; `stream` sends server-sent
        events as the text is drawn."""
        body = await parsed(request, CompletionRequest)
        return await text_reply(request, body, service, settings, completions.completion_job, completions.Reply)

    @routes.post("/v1/chat/completions", responses=COMPLETION_RESPONSES, openapi_extra=request_body(ChatRequest))
    async def chat(request: Request, who: Caller, service: ServiceDep, settings: SettingsDep) -> Response:
        """The next assistant turn of a conversation, as OpenAI's Chat Completions API answers it (the model's
        chat template writes the prompt; the turn ends at its end-of-turn token)."""
        body = await parsed(request, ChatRequest)
        return await text_reply(request, body, service, settings, completions.chat_job, completions.ChatReply)

    return routes


async def text_reply(
    request: Request, body: BaseModel, service: Service, settings: ServeSettings, to_job, reply_type
) -> Response:
    """The answer to a valid text request: its job queued on the model's decode loop, then one JSON body, or the
    text streamed as it is drawn."""
    loop, events = asyncio.get_running_loop(), asyncio.Queue()

    def on_text(k: int, text: str) -> None:  # called on the generation thread
        loop.call_soon_threadsafe(events.put_nowait, (k, text))

    models = service.loaded()
    # off the event loop: tokenising, and an assistant's retrieval and intent model, take milliseconds of CPU
    job = await asyncio.to_thread(to_job, body, models, settings, on_text if body.stream else None)
    service.check(job)
    reply = reply_type(job, models[job.model], body)
    request.state.fields = {"model": job.model, "completions": len(job.seeds), **job.extension}
    done = asyncio.wrap_future(service.submit(job))
    service.metrics.count_assistant(job.model, job.extension.get("assistant"))  # once it is taken, not refused
    if not body.stream:
        return JSONResponse(await asyncio.to_thread(reply.body, await done))
    return StreamingResponse(stream(reply, events, done), media_type="text/event-stream")


async def stream(reply, events: asyncio.Queue, done: asyncio.Future):
    """The server-sent events of a streamed completion: each piece of text as it is drawn, then the ending. The
    pieces are queued on the loop before the result is, so none is left behind when `done` completes. A client
    that goes away cancels the job: its completions leave the decode batch at the next step."""
    try:
        opening = reply.opening()
        if opening:
            yield opening
        while True:
            piece = asyncio.ensure_future(events.get())
            finished, _ = await asyncio.wait({piece, done}, return_when=asyncio.FIRST_COMPLETED)
            if piece not in finished:
                piece.cancel()
                break
            yield reply.chunk(*piece.result())
        while not events.empty():
            yield reply.chunk(*events.get_nowait())
        try:
            yield reply.ending(done.result())
        except Exception as error:  # the status line is sent: the failure can only be an event
            yield completions.event({"error": streamed_error(error)})
    finally:
        if not done.done():
            reply.job.cancelled = True
