"""The web page (services/gateway/static/): plain HTML, CSS and JavaScript served by the gateway, no
build step. The page itself holds no data; everything it shows comes from /api/v1 with the caller's key."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, redirect, send_from_directory

STATIC = Path(__file__).resolve().parent / "static"

ui = Blueprint("ui", __name__)


@ui.get("/")
def root():
    return redirect("/ui/", code=302)


@ui.get("/ui/")
@ui.get("/ui/<path:name>")
def page(name: str = "index.html"):
    response = send_from_directory(STATIC, name, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response
