"""Who is calling. Three ways in: an API key (kept hashed in Redis, created by an admin), an OpenID Connect
bearer token (verified against the issuer's published keys), or nobody at all when authentication is disabled
for a local demo. `install_auth` puts the caller in `flask.g.caller` for every non-public path;
`requires_admin` guards the admin routes. No description raised here ever contains the credential."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import redis
from flask import Flask, Response, g, request
from werkzeug.exceptions import Forbidden, ServiceUnavailable, Unauthorized

from services.gateway.callers import ANONYMOUS, AuthenticationFailed, Caller, shown
from services.gateway.oidc import OidcVerifier
from services.gateway.problems import problem

log = logging.getLogger("tumorsearch.gateway")

ROLES = ("viewer", "admin")
KEYS_HASH = "tumorsearch:gateway:apikeys"
KEY_PREFIX = "tsk_"
BOOTSTRAP_NAME = "bootstrap-admin"  # reserved: no stored key may take the bootstrap key's name
MIN_BOOTSTRAP_KEY_CHARS = 32
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics", "/ui/", "/", "/favicon.ico")
AFTER_AUTHENTICATION = "tumorsearch_after_authentication"  # marker attribute, see after_authentication()


class KeyNameTaken(ValueError):
    """create() was asked for a name that already has a key."""


def _digest(key: str) -> str:
    # Plain SHA-256, no salt or stretching: issued keys carry 32 random bytes (256 bits), so the digest is as
    # hard to invert as the key is to guess. Slow hashes protect low-entropy passwords, which these are not.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ApiKeyStore:
    """API keys in one Redis hash: field = key name, value = JSON {digest, role, created}. The plaintext
    key is returned once by create() and stored nowhere."""

    def __init__(self, client: redis.Redis, bootstrap_admin_key: str | None = None):
        self._redis = client
        self._bootstrap: str | None = None
        if bootstrap_admin_key is not None:
            if len(bootstrap_admin_key) < MIN_BOOTSTRAP_KEY_CHARS:
                raise ValueError(f"expected a bootstrap admin key of at least {MIN_BOOTSTRAP_KEY_CHARS} random "
                                 f"characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`); "
                                 f"found {len(bootstrap_admin_key)} characters")
            self._bootstrap = _digest(bootstrap_admin_key)  # only the digest stays in memory

    def create(self, name: str, role: str) -> str:
        if not isinstance(name, str) or not KEY_NAME.fullmatch(name):
            raise ValueError(f"expected a key name of 1-64 letters, digits or . _ @ - (starting with a letter "
                             f"or digit); found {shown(name)}")
        if role not in ROLES:
            raise ValueError(f"expected role 'viewer' or 'admin'; found {shown(role)}")
        if name == BOOTSTRAP_NAME:
            raise KeyNameTaken(f"expected a new key name; found {name!r}, reserved for the bootstrap admin key")
        key = KEY_PREFIX + secrets.token_urlsafe(32)  # 32 bytes -> 43 url-safe characters
        created = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        record = json.dumps({"digest": _digest(key), "role": role, "created": created})
        if not self._redis.hsetnx(KEYS_HASH, name, record):  # atomic: two admins cannot both take a name
            raise KeyNameTaken(f"expected a new key name; found an existing key named {name!r} (delete it first)")
        return key

    def lookup(self, key: str) -> Caller | None:
        digest = _digest(key)
        if self._bootstrap is not None and hmac.compare_digest(digest, self._bootstrap):
            return Caller(BOOTSTRAP_NAME, "admin", "api-key")
        found = None
        # Every stored digest is compared (no early exit), each in constant time, so the answer's timing
        # does not depend on which key, or how much of one, matched.
        for name, raw in self._redis.hgetall(KEYS_HASH).items():
            record = json.loads(raw)
            if hmac.compare_digest(digest, record["digest"]) and found is None:
                found = Caller(_text(name), record["role"], "api-key")
        return found

    def list(self) -> list[dict]:
        entries = []
        for name, raw in self._redis.hgetall(KEYS_HASH).items():
            record = json.loads(raw)
            entries.append({"name": _text(name), "role": record["role"], "created": record["created"]})
        return sorted(entries, key=lambda entry: entry["name"])

    def delete(self, name: str) -> bool:
        return bool(self._redis.hdel(KEYS_HASH, name))


class Authenticator:
    """Turns a request's headers into a Caller or raises 401 (503 when the key store or JWKS is down)."""

    def __init__(self, keys: ApiKeyStore, oidc: OidcVerifier | None, disabled: bool):
        self.keys, self.oidc, self.disabled = keys, oidc, disabled

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        """`headers`: a case-insensitive mapping such as `flask.request.headers`."""
        if self.disabled:
            return ANONYMOUS
        api_key = (headers.get("X-API-Key") or "").strip()
        if api_key:
            return self._by_key(api_key)
        authorization = (headers.get("Authorization") or "").strip()
        if not authorization:
            raise AuthenticationFailed("missing credentials: expected an `X-API-Key` header or `Authorization: "
                                       "Bearer <API key or OIDC token>`", credential_presented=False)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            # Without a space the "scheme" may be the credential itself, so only a plain word is shown.
            found = repr(scheme) if re.fullmatch(r"[A-Za-z]{1,20}", scheme) else "something else"
            raise AuthenticationFailed(f"expected `Authorization: Bearer <API key or OIDC token>`; found {found}")
        if token.startswith(KEY_PREFIX):
            return self._by_key(token)
        if self.oidc is None:
            raise AuthenticationFailed("this gateway accepts API keys only (`X-API-Key: tsk_…` or `Authorization: "
                                       "Bearer tsk_…`); found a bearer token that is not an API key")
        return self.oidc.verify(token)

    def _by_key(self, key: str) -> Caller:
        try:
            caller = self.keys.lookup(key)
        except redis.RedisError as error:
            log.warning("API key store unreachable", extra={"error_type": type(error).__name__})
            raise ServiceUnavailable("the API key store (Redis) does not answer; try again shortly") from None
        if caller is None:
            raise AuthenticationFailed("unknown API key: it was never issued here or has been deleted")
        return caller


def is_public(path: str, public_paths: Sequence[str]) -> bool:
    """`/` matches only itself; other entries match themselves and what lies below them."""
    for public in public_paths:
        if public == "/":
            if path == "/":
                return True
        elif path == public.rstrip("/") or path.startswith(public.rstrip("/") + "/"):
            return True
    return False


def _unauthorized_problem(error: Unauthorized) -> Response:
    # Registered for 401 only: the generic problem handler would drop the challenge header.
    response = problem(401, "Unauthorized", error.description or "authentication required")
    response.headers["WWW-Authenticate"] = getattr(error, "challenge", 'Bearer realm="tumorsearch"')
    return response


def install_auth(app: Flask, authenticator: Authenticator, public_paths: tuple[str, ...] = PUBLIC_PATHS) -> None:
    """Sets `g.caller` before every request outside `public_paths`; stores the authenticator in
    `app.extensions["tumorsearch.authenticator"]`."""
    app.extensions["tumorsearch.authenticator"] = authenticator
    app.register_error_handler(Unauthorized, _unauthorized_problem)

    def _authenticate() -> None:
        # A CORS preflight never carries credentials (the browser leaves them out by design) and reads nothing.
        if request.method == "OPTIONS" or is_public(request.path, public_paths):
            return
        g.caller = authenticator.authenticate(request.headers)

    # Ahead of any hook marked `after_authentication`, so the install order of the pieces does not matter.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks.insert(next((i for i, hook in enumerate(hooks) if getattr(hook, AFTER_AUTHENTICATION, False)),
                      len(hooks)), _authenticate)


def after_authentication(hook: Callable) -> Callable:
    """Marks a before_request hook that reads `g.caller`: install_auth's hook runs before it even when
    install_auth is called later (the rate limit counts per caller)."""
    setattr(hook, AFTER_AUTHENTICATION, True)
    return hook


def requires_admin(view: Callable) -> Callable:
    """Route decorator: 403 for a viewer; 401 when no caller was set (a guarded view on a public path)."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        caller: Caller | None = g.get("caller")
        if caller is None:
            raise AuthenticationFailed("expected an authenticated admin; found no caller (is install_auth "
                                       "installed and the path not public?)", credential_presented=False)
        if caller.role != "admin":
            raise Forbidden(f"admin role required; found {caller.role}")
        return view(*args, **kwargs)

    return guarded
