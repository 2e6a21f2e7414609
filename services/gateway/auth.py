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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import jwt
import redis
from flask import Flask, Response, g, request
from werkzeug.exceptions import Forbidden, ServiceUnavailable, Unauthorized

from services.gateway.problems import problem

log = logging.getLogger("tumorsearch.gateway")

Role = Literal["viewer", "admin"]
ROLES = ("viewer", "admin")
KEYS_HASH = "tumorsearch:gateway:apikeys"
KEY_PREFIX = "tsk_"
BOOTSTRAP_NAME = "bootstrap-admin"  # reserved: no stored key may take the bootstrap key's name
MIN_BOOTSTRAP_KEY_CHARS = 32
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics", "/ui/", "/", "/favicon.ico")
# Asymmetric signatures only. `none` proves nothing, and with HMAC the verification key is the signing key:
# accepting HS256 lets anyone who has the issuer's *public* key (everyone) sign tokens (algorithm confusion).
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                         "ES256", "ES256K", "ES384", "ES512", "EdDSA")
KEY_FAMILY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}  # algorithm prefix -> key type
CLOCK_LEEWAY_S = 30  # tolerated clock difference between the issuer and this machine
JWKS_LIFESPAN_S = 300  # a key removed by the issuer stops being trusted within 5 minutes
AFTER_AUTHENTICATION = "tumorsearch_after_authentication"  # marker attribute, see after_authentication()
JWKS_REFRESH_MIN_S = 30.0  # unknown `kid`s re-fetch the JWKS at most this often (no fetch per forged token)


@dataclass(frozen=True)
class Caller:
    name: str
    role: Role
    method: Literal["api-key", "oidc", "disabled"]


ANONYMOUS = Caller("anonymous", "admin", "disabled")


class AuthenticationFailed(Unauthorized):
    """A 401 whose answer carries a `WWW-Authenticate: Bearer` challenge (RFC 6750)."""

    def __init__(self, description: str, *, credential_presented: bool = True):
        super().__init__(description)
        self.challenge = 'Bearer realm="tumorsearch"' + (', error="invalid_token"' if credential_presented else "")


class KeyNameTaken(ValueError):
    """create() was asked for a name that already has a key."""


def _digest(key: str) -> str:
    # Plain SHA-256, no salt or stretching: issued keys carry 32 random bytes (256 bits), so the digest is as
    # hard to invert as the key is to guess. Slow hashes protect low-entropy passwords, which these are not.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _shown(value: Any) -> str:
    """A claim or header value for an error message: quoted and cut, never the token itself."""
    return repr(value)[:80]


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
                             f"or digit); found {_shown(name)}")
        if role not in ROLES:
            raise ValueError(f"expected role 'viewer' or 'admin'; found {_shown(role)}")
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


class OidcVerifier:
    """Verifies OIDC access/ID tokens: signature against the issuer's JWKS, `iss`, `aud`, `exp` (required),
    `nbf`/`iat` when present, and the algorithm allow-list."""

    def __init__(self, issuer: str, audience: str, jwks_url: str, algorithms: Sequence[str],
                 role_claim: str = "roles", admin_role: str = "tumorsearch-admin"):
        if not issuer or not audience:
            raise ValueError(f"expected an OIDC issuer and audience (without `aud` a token minted for another "
                             f"application would be accepted); found issuer={issuer!r}, audience={audience!r}")
        if not jwks_url or not jwks_url.startswith(("https://", "file://")):
            # Plain http would let anyone on the path substitute their own keys.
            raise ValueError(f"expected a JWKS URL starting with https:// or file://; found {jwks_url!r}")
        refused = [name for name in algorithms if name not in ASYMMETRIC_ALGORITHMS]
        if refused or not algorithms:
            raise ValueError(f"expected asymmetric JWT algorithms only ({', '.join(ASYMMETRIC_ALGORITHMS)}); "
                             f"found {list(algorithms)}: `none` and HMAC (HS*) are never accepted")
        self.issuer, self.audience, self.jwks_url = issuer, audience, jwks_url
        self.algorithms = tuple(algorithms)
        self.role_claim, self.admin_role = role_claim, admin_role
        # The key set is cached with a lifespan rather than per kid forever (`cache_keys`), so a key the
        # issuer withdraws stops verifying tokens without a restart.
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=False, cache_jwk_set=True,
                                     lifespan=JWKS_LIFESPAN_S, timeout=5)
        self._last_refresh = float("-inf")

    def verify(self, token: str) -> Caller:
        alg, kid = self._checked_header(token)
        key = self._signing_key(kid, alg)
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                                leeway=CLOCK_LEEWAY_S, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.PyJWTError as error:
            raise AuthenticationFailed(self._explain(error, token)) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthenticationFailed(f"expected a `sub` claim naming the caller; found {_shown(subject)}")
        return Caller(subject, "admin" if self.admin_role in self._roles(claims) else "viewer", "oidc")

    def _checked_header(self, token: str) -> tuple[str, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationFailed("expected a bearer token that is a JWT (three base64url parts) or an "
                                       "API key (tsk_…); found neither") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise AuthenticationFailed(f"token algorithm {_shown(alg)} is not allowed; expected one of "
                                       f"{', '.join(self.algorithms)}")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationFailed(f"expected a `kid` header naming one of the issuer's keys; found {_shown(kid)}")
        return alg, kid

    def _signing_key(self, kid: str, alg: str) -> jwt.PyJWK:
        try:
            key = self._find_key(kid, refresh=False)
            if key is None and time.monotonic() - self._last_refresh >= JWKS_REFRESH_MIN_S:
                self._last_refresh = time.monotonic()  # the issuer may have rotated keys since the last fetch
                key = self._find_key(kid, refresh=True)
        except jwt.PyJWKClientConnectionError:
            log.warning("the OIDC key set could not be fetched", extra={"jwks_url": self.jwks_url})
            raise ServiceUnavailable(f"could not fetch the issuer's keys from {self.jwks_url}; bearer tokens "
                                     "cannot be checked until it answers") from None
        except jwt.PyJWTError as error:
            raise ServiceUnavailable(f"expected signing keys in the issuer's JWKS at {self.jwks_url}; found none "
                                     f"usable ({type(error).__name__})") from None
        if key is None:
            raise AuthenticationFailed(f"no key with kid {_shown(kid)} in the issuer's JWKS")
        if KEY_FAMILY.get(alg[:2]) != KEY_FAMILY.get(key.algorithm_name[:2]):
            raise AuthenticationFailed(f"token algorithm {alg} does not fit key {_shown(kid)} "
                                       f"(a {key.algorithm_name} key)")
        return key

    def _find_key(self, kid: str, refresh: bool) -> jwt.PyJWK | None:
        return next((key for key in self._jwks.get_signing_keys(refresh) if key.key_id == kid), None)

    def _explain(self, error: jwt.PyJWTError, token: str) -> str:
        if isinstance(error, (jwt.InvalidAudienceError, jwt.InvalidIssuerError)):
            # Read unverified only to say what was found: PyJWT checks claims after the signature.
            claims = jwt.decode(token, options={"verify_signature": False})
            if isinstance(error, jwt.InvalidAudienceError):
                return f"wrong audience: expected {self.audience!r}; found {_shown(claims.get('aud'))}"
            return f"wrong issuer: expected {self.issuer!r}; found {_shown(claims.get('iss'))}"
        if isinstance(error, jwt.ExpiredSignatureError):
            return "the bearer token has expired; ask the identity provider for a new one"
        if isinstance(error, jwt.MissingRequiredClaimError):
            return f"the bearer token lacks the required claim {error.claim!r}"
        if isinstance(error, jwt.ImmatureSignatureError):
            return f"the bearer token is not valid yet (`nbf` or `iat` beyond {CLOCK_LEEWAY_S} s in the future)"
        if isinstance(error, jwt.InvalidSignatureError):
            return "the bearer token's signature does not verify with the issuer's key"
        return f"the bearer token was refused ({type(error).__name__})"

    def _roles(self, claims: dict) -> set[str]:
        value: Any = claims
        for part in self.role_claim.split("."):  # dotted paths reach nested claims (Keycloak: realm_access.roles)
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            return set(value.split())
        return {item for item in value if isinstance(item, str)} if isinstance(value, list) else set()


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
