"""Every error leaves the gateway as application/problem+json (RFC 9457): a title, the status and a
detail a person can act on. Never a stack trace, never patient data."""

from __future__ import annotations

import logging

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

log = logging.getLogger("tumorsearch.gateway")

PROBLEM_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_TYPE)


def register_problem_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        response = problem(error.code or 500, error.name, error.description or error.name)
        # Keep what the exception says beyond its body: Allow on a 405 (RFC 9110), Retry-After, WWW-Authenticate.
        for name, value in error.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # The trace goes to the log for the maintainer; the client learns only that it failed.
        log.exception("unhandled error", extra={"error_type": type(error).__name__})
        return problem(500, "Internal Server Error", "The gateway failed to answer; the error is logged.")
