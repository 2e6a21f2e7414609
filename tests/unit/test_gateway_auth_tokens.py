"""OIDC bearer tokens: a locally generated RSA key, its JWKS in a file (file:// URL), and tokens that must be
accepted (viewer / admin by role) or refused with a message saying why, never echoing the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.datastructures import Headers
from werkzeug.exceptions import ServiceUnavailable, Unauthorized

from services.gateway.auth import ApiKeyStore, Authenticator, is_public
from services.gateway.oidc import OidcVerifier

pytestmark = pytest.mark.unit

ISSUER = "https://idp.example/realms/hospital"
AUDIENCE = "tumorsearch"
KID = "key-1"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def jwks_url(signing_key, tmp_path: Path) -> str:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid=KID, use="sig", alg="RS256")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return path.as_uri()


@pytest.fixture
def verifier(jwks_url: str) -> OidcVerifier:
    return OidcVerifier(ISSUER, AUDIENCE, jwks_url, ["RS256", "ES256"], "roles", "tumorsearch-admin")


def claims(**changes) -> dict:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dr.house", "iat": now, "exp": now + 300, "roles": ["radiologist"]}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def token(key, payload: dict, kid: str = KID, alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict, payload: dict, sign) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def refusal(verifier: OidcVerifier, bearer: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(bearer)
    description = caught.value.description
    # Neither the token nor any long part of it (a signature, a payload) may appear in the answer.
    assert not [part for part in [bearer, *bearer.split(".")] if len(part) > 8 and part in description], \
        "the token was echoed"
    return description


def test_a_valid_token_makes_a_viewer_named_by_sub(verifier, signing_key):
    caller = verifier.verify(token(signing_key, claims()))
    assert (caller.name, caller.role, caller.method) == ("dr.house", "viewer", "oidc")


@pytest.mark.parametrize("roles", [["radiologist", "tumorsearch-admin"], "radiologist tumorsearch-admin"])
def test_the_admin_role_in_a_list_or_a_space_separated_string_makes_an_admin(verifier, signing_key, roles):
    assert verifier.verify(token(signing_key, claims(roles=roles))).role == "admin"


def test_a_nested_role_claim_is_followed(jwks_url, signing_key):
    nested = OidcVerifier(ISSUER, AUDIENCE, jwks_url, ["RS256"], "realm_access.roles", "tumorsearch-admin")
    bearer = token(signing_key, claims(roles=None, realm_access={"roles": ["tumorsearch-admin"]}))
    assert nested.verify(bearer).role == "admin"


def test_an_expired_token_is_refused(verifier, signing_key):
    assert "expired" in refusal(verifier, token(signing_key, claims(exp=int(time.time()) - 3600)))


def test_a_token_without_exp_is_refused(verifier, signing_key):
    assert "required claim 'exp'" in refusal(verifier, token(signing_key, claims(exp=None)))


def test_a_token_not_valid_yet_is_refused(verifier, signing_key):
    assert "not valid yet" in refusal(verifier, token(signing_key, claims(nbf=int(time.time()) + 3600)))


def test_a_token_for_another_audience_is_refused(verifier, signing_key):
    description = refusal(verifier, token(signing_key, claims(aud="billing")))
    assert "wrong audience" in description and "'tumorsearch'" in description and "'billing'" in description


def test_a_token_from_another_issuer_is_refused(verifier, signing_key):
    description = refusal(verifier, token(signing_key, claims(iss="https://evil.example")))
    assert "wrong issuer" in description and "https://evil.example" in description


def test_an_unsigned_alg_none_token_is_refused(verifier):
    bearer = handmade({"alg": "none", "kid": KID, "typ": "JWT"}, claims(roles=["tumorsearch-admin"]), lambda _: b"")
    assert "algorithm 'none' is not allowed" in refusal(verifier, bearer)


def test_hs256_signed_with_the_public_key_is_refused(verifier, signing_key):
    # The classic confusion attack: the public key (known to all) used as an HMAC secret.
    public_pem = signing_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    bearer = handmade({"alg": "HS256", "kid": KID, "typ": "JWT"}, claims(roles=["tumorsearch-admin"]),
                      lambda data: hmac.new(public_pem, data, hashlib.sha256).digest())
    assert "algorithm 'HS256' is not allowed" in refusal(verifier, bearer)


def test_an_unknown_kid_is_refused(verifier):
    assert "no key with kid 'other-key'" in refusal(verifier, token(rsa_key(), claims(), kid="other-key"))


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(verifier):
    assert "signature does not verify" in refusal(verifier, token(rsa_key(), claims()))


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "e30", "tsk-but-not-a-key", "\u00e9t\u00e9.\u00e9.x"])
def test_garbage_is_refused(verifier, garbage):
    assert "expected a bearer token that is a JWT" in refusal(verifier, garbage)


def test_a_token_without_kid_is_refused(verifier, signing_key):
    bearer = jwt.encode(claims(), signing_key, algorithm="RS256")
    assert "expected a `kid` header" in refusal(verifier, bearer)


def test_the_key_set_is_cached(verifier, signing_key, jwks_url):
    verifier.verify(token(signing_key, claims()))
    Path(jwks_url.removeprefix("file://")).unlink()  # the next verification must not need the file
    assert verifier.verify(token(signing_key, claims(sub="dr.cuddy"))).name == "dr.cuddy"


def test_an_unreachable_key_set_answers_503_not_401(tmp_path, signing_key):
    missing = OidcVerifier(ISSUER, AUDIENCE, (tmp_path / "absent.json").as_uri(), ["RS256"])
    with pytest.raises(ServiceUnavailable, match="could not fetch the issuer's keys"):
        missing.verify(token(signing_key, claims()))


@pytest.mark.parametrize("algorithms", [["RS256", "HS256"], ["none"], ["HS512"], []])
def test_none_and_hmac_algorithms_are_refused_at_construction(jwks_url, algorithms):
    with pytest.raises(ValueError, match="asymmetric JWT algorithms only"):
        OidcVerifier(ISSUER, AUDIENCE, jwks_url, algorithms)


def test_a_plain_http_jwks_url_and_a_missing_audience_are_refused(jwks_url):
    with pytest.raises(ValueError, match="https:// or file://"):
        OidcVerifier(ISSUER, AUDIENCE, "http://idp.example/jwks", ["RS256"])
    with pytest.raises(ValueError, match="issuer and audience"):
        OidcVerifier(ISSUER, "", jwks_url, ["RS256"])


@pytest.fixture
def authenticator(verifier) -> Authenticator:
    # The key store is never reached on these paths (no API key is presented): a client to nowhere suffices.
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.1)
    return Authenticator(ApiKeyStore(unreachable), verifier, disabled=False)


def test_the_authenticator_takes_a_jwt_from_the_bearer_header(authenticator, signing_key):
    headers = Headers({"Authorization": f"Bearer {token(signing_key, claims())}"})
    assert authenticator.authenticate(headers).name == "dr.house"


def test_missing_credentials_get_a_bearer_challenge_without_error(authenticator):
    with pytest.raises(Unauthorized, match="missing credentials") as caught:
        authenticator.authenticate(Headers())
    assert caught.value.challenge == 'Bearer realm="tumorsearch"'


def test_a_scheme_without_a_space_is_not_echoed(authenticator):
    secret = "tsk_" + "x" * 43
    with pytest.raises(Unauthorized) as caught:
        authenticator.authenticate(Headers({"Authorization": secret}))
    assert secret not in caught.value.description and "something else" in caught.value.description
    assert 'error="invalid_token"' in caught.value.challenge


def test_disabled_authentication_makes_everyone_an_anonymous_admin(verifier):
    caller = Authenticator(ApiKeyStore(redis.Redis(port=1)), verifier, disabled=True).authenticate(Headers())
    assert (caller.name, caller.role, caller.method) == ("anonymous", "admin", "disabled")


def test_a_short_bootstrap_key_is_refused():
    with pytest.raises(ValueError, match="at least 32"):
        ApiKeyStore(redis.Redis(port=1), bootstrap_admin_key="admin")


@pytest.mark.parametrize("path, public", [("/", True), ("/healthz", True), ("/ui/", True), ("/ui/app.js", True),
                                          ("/metrics", True), ("/api/v1/tumors/x", False), ("/healthzz", False),
                                          ("/uix", False), ("/favicon.ico", True)])
def test_public_paths(path, public):
    assert is_public(path, ("/healthz", "/readyz", "/metrics", "/ui/", "/", "/favicon.ico")) is public
