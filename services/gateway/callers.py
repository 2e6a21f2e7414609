"""Who a request comes from, as the gateway's authentication decides it, and the 401 it answers with
otherwise. Shared by the key store, the OIDC verifier and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from werkzeug.exceptions import Unauthorized

Role = Literal["viewer", "admin"]


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


def shown(value: Any) -> str:
    """A claim or header value for an error message: quoted and cut, never the token itself."""
    return repr(value)[:80]
