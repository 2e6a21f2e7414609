"""What every request and answer is held to: a body size cap, a per-caller rate limit (Redis fixed window),
CORS for the listed origins only, and the security headers browsers act on. `install_limits` and
`install_auth` may come in either order: the per-caller count is marked to run after authentication."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import redis
from flask import Flask, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from services.gateway.auth import after_authentication
from services.gateway.problems import problem

log = logging.getLogger("tumorsearch.gateway")

RATE_PREFIX = "tumorsearch:gateway:rate"
WINDOW_S = 60
# Probes and scrapes are never throttled: a 429 on /readyz would take the gateway out of service.
UNLIMITED_PATHS = ("/healthz", "/readyz", "/metrics")
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, X-API-Key, Content-Type"
CORS_MAX_AGE_S = "600"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                               "frame-ancestors 'none'",
}
REDIS_DOWN_LOG_INTERVAL_S = 60.0
# After a Redis failure the limiter leaves Redis alone this long: the client's own retries (redis-py retries
# with back-off) would otherwise add seconds to every request during an outage.
REDIS_BACKOFF_S = 5.0


class RateLimiter:
    """Fixed one-minute windows: key `<prefix>:<identity>:<minute>`, INCR + EXPIRE in one transaction."""

    def __init__(self, client: redis.Redis, per_minute: int):
        self._redis, self.per_minute = client, per_minute
        self._last_warning = float("-inf")
        self._skip_until = float("-inf")

    def hit(self, identity: str) -> int | None:
        """Counts one request; the count in this window, or None when Redis does not answer."""
        if time.monotonic() < self._skip_until:
            return None
        key = f"{RATE_PREFIX}:{identity}:{int(time.time() // WINDOW_S)}"
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, 2 * WINDOW_S)  # outlives its window; an EXPIRE lost with a crash cannot leak a key
            return pipe.execute()[0]
        except redis.RedisError as error:
            self._redis_down(error)
            return None

    def peek(self, identity: str) -> int | None:
        if time.monotonic() < self._skip_until:
            return None
        key = f"{RATE_PREFIX}:{identity}:{int(time.time() // WINDOW_S)}"
        try:
            value = self._redis.get(key)
        except redis.RedisError as error:
            self._redis_down(error)
            return None
        return int(value) if value is not None else 0

    def _redis_down(self, error: Exception) -> None:
        # Allow the request: the limit guards against runaway clients, while the answers are what radiologists
        # need now; failing closed would make a Redis outage a gateway outage. Logged at most once a minute.
        now = time.monotonic()
        self._skip_until = now + REDIS_BACKOFF_S
        if now - self._last_warning >= REDIS_DOWN_LOG_INTERVAL_S:
            self._last_warning = now
            log.warning("rate limit not enforced: Redis does not answer",
                        extra={"error_type": type(error).__name__})


def _too_many(limiter: RateLimiter, count: int, who: str) -> Response:
    retry_after = max(1, WINDOW_S - int(time.time()) % WINDOW_S)
    response = problem(429, "Too Many Requests", f"expected at most {limiter.per_minute} requests a minute from "
                                                 f"{who}; found {count} in this minute. Retry after {retry_after} s")
    response.headers["Retry-After"] = str(retry_after)
    return response


def _preflight(origins: frozenset[str]) -> Response:
    origin = request.headers.get("Origin", "")
    if origin not in origins:
        return problem(403, "Forbidden", f"expected an Origin listed in TUMORSEARCH_GATEWAY__CORS_ORIGINS; found "
                                         f"{origin[:100]!r}")
    response = Response(status=204)
    response.headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": CORS_METHODS,
                             "Access-Control-Allow-Headers": CORS_HEADERS, "Access-Control-Max-Age": CORS_MAX_AGE_S})
    return response


def _before_auth(limiter: RateLimiter, origins: frozenset[str], max_body_bytes: int) -> Response | None:
    """Runs before authentication: checks that need no caller, and throttles addresses that keep failing it."""
    if request.content_length is not None and request.content_length > max_body_bytes:
        # Refused before any view reads the body; a body without Content-Length is capped by MAX_CONTENT_LENGTH.
        raise RequestEntityTooLarge(f"expected a body of at most {max_body_bytes} bytes; found Content-Length "
                                    f"{request.content_length}")
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return _preflight(origins)
    failures = limiter.peek(f"failed:{request.remote_addr}")
    if failures is not None and failures >= limiter.per_minute:
        return _too_many(limiter, failures, "this address with refused credentials")
    return None


def _after_auth(limiter: RateLimiter) -> Response | None:
    if request.path in UNLIMITED_PATHS:
        return None
    caller = g.get("caller")
    # Per caller when known (many users share a hospital proxy's address); per address before authentication.
    identity = f"caller:{caller.method}:{caller.name}" if caller else f"ip:{request.remote_addr}"
    count = limiter.hit(identity)
    if count is not None and count > limiter.per_minute:
        return _too_many(limiter, count, f"caller {caller.name!r}" if caller else "this address")
    return None


def _finish(response: Response, limiter: RateLimiter, origins: frozenset[str]) -> Response:
    if response.status_code == 401:
        limiter.hit(f"failed:{request.remote_addr}")  # feeds the pre-authentication throttle
    origin = request.headers.get("Origin")
    if origins:
        response.vary.add("Origin")  # the answer differs by Origin: shared caches must not mix them up
    if origin and origin in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After, Location"
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"  # answers name patients' studies: never cached
    return response


def install_limits(app: Flask, redis_client: redis.Redis, rate_per_minute: int, cors_origins: Iterable[str],
                   max_body_bytes: int) -> None:
    """Body cap, rate limit, CORS and security headers. `cors_origins` are exact origins
    (`https://viewer.example:8443`), no wildcards."""
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    limiter = RateLimiter(redis_client, rate_per_minute)
    origins = frozenset(cors_origins)
    # First in line, ahead of install_auth's hook: a client failing authentication is throttled too, and a
    # preflight or an oversized body is answered without touching the key store.
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: _before_auth(limiter, origins, max_body_bytes))
    app.before_request(after_authentication(lambda: _after_auth(limiter)))
    app.after_request(lambda response: _finish(response, limiter, origins))
