"""OpenID Connect bearer tokens: verified against the issuer's published keys (JWKS) with an allow-list
of asymmetric algorithms; the caller's role comes from a configurable claim. No description raised here
ever contains the token."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import jwt
from werkzeug.exceptions import ServiceUnavailable

from services.gateway.callers import AuthenticationFailed, Caller, shown

log = logging.getLogger("tumorsearch.gateway")

# Asymmetric signatures only. `none` proves nothing, and with HMAC the verification key is the signing key:
# accepting HS256 lets anyone who has the issuer's *public* key (everyone) sign tokens (algorithm confusion).
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                         "ES256", "ES256K", "ES384", "ES512", "EdDSA")
KEY_FAMILY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}  # algorithm prefix -> key type
CLOCK_LEEWAY_S = 30  # tolerated clock difference between the issuer and this machine
JWKS_LIFESPAN_S = 300  # a key removed by the issuer stops being trusted within 5 minutes
JWKS_REFRESH_MIN_S = 30.0  # unknown `kid`s re-fetch the JWKS at most this often (no fetch per forged token)


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
            raise AuthenticationFailed(f"expected a `sub` claim naming the caller; found {shown(subject)}")
        return Caller(subject, "admin" if self.admin_role in self._roles(claims) else "viewer", "oidc")

    def _checked_header(self, token: str) -> tuple[str, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationFailed("expected a bearer token that is a JWT (three base64url parts) or an "
                                       "API key (tsk_…); found neither") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise AuthenticationFailed(f"token algorithm {shown(alg)} is not allowed; expected one of "
                                       f"{', '.join(self.algorithms)}")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationFailed(f"expected a `kid` header naming one of the issuer's keys; found {shown(kid)}")
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
            raise AuthenticationFailed(f"no key with kid {shown(kid)} in the issuer's JWKS")
        if KEY_FAMILY.get(alg[:2]) != KEY_FAMILY.get(key.algorithm_name[:2]):
            raise AuthenticationFailed(f"token algorithm {alg} does not fit key {shown(kid)} "
                                       f"(a {key.algorithm_name} key)")
        return key

    def _find_key(self, kid: str, refresh: bool) -> jwt.PyJWK | None:
        return next((key for key in self._jwks.get_signing_keys(refresh) if key.key_id == kid), None)

    def _explain(self, error: jwt.PyJWTError, token: str) -> str:
        if isinstance(error, (jwt.InvalidAudienceError, jwt.InvalidIssuerError)):
            # Read unverified only to say what was found: PyJWT checks claims after the signature.
            claims = jwt.decode(token, options={"verify_signature": False})
            if isinstance(error, jwt.InvalidAudienceError):
                return f"wrong audience: expected {self.audience!r}; found {shown(claims.get('aud'))}"
            return f"wrong issuer: expected {self.issuer!r}; found {shown(claims.get('iss'))}"
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
