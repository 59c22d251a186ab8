"""GET /: the web page to try the served models (static/index.html)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse


def router() -> APIRouter:
    routes = APIRouter()
    web_page = resources.files("aigc.serving").joinpath("static/index.html").read_text()

    @routes.get("/", response_class=HTMLResponse)
    def page() -> str:
        return web_page

    return routes
