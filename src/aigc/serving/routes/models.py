"""GET /v1/models (OpenAI's model list, with what a client needs to build a request), /v1/models/{model} (one
entry of it, as OpenAI's "retrieve model") and /v1/models/{name}/report (the run's training report)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from aigc.serving.dependencies import Caller, ServiceDep
from aigc.serving.errors import REFUSALS, ModelNotFound, Refused
from aigc.serving.service import ServedModel, Service


def router() -> APIRouter:
    routes = APIRouter()
    not_found = {404: REFUSALS[404]}

    @routes.get("/v1/models")
    def models(who: Caller, service: ServiceDep) -> dict:
        """The served models in the shape of OpenAI's model list (`data`), each with what a client needs to build
        a request (sample settings and their bounds, classes or context)."""
        return {"object": "list", "data": [served.listing() for served in service.loaded().values()]}

    @routes.get("/v1/models/{model}", responses=not_found)
    def retrieve_model(model: str, who: Caller, service: ServiceDep) -> dict:
        """One served model, as an entry of /v1/models (OpenAI's "retrieve model"); 404 model_not_found."""
        return served(service, model).listing()

    @routes.get("/v1/models/{name}/report", response_class=HTMLResponse, responses=not_found)
    def report(name: str, who: Caller, service: ServiceDep) -> str:
        """The model's training report (aigc report RUN_DIR writes it into the run directory)."""
        page = served(service, name).report
        if page is None:
            raise Refused(404, f"no report for {name!r}; make one with: aigc report RUN_DIR")
        return page.read_text()

    return routes


def served(service: Service, name: str) -> ServedModel:
    """The served model of that name; ModelNotFound (404) when there is none."""
    found = service.loaded().get(name)
    if found is None:
        raise ModelNotFound(name)
    return found
