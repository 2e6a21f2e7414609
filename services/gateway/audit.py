"""The audit trail: who asked for which tumours and which studies they were shown, who was refused, who
changed whose keys. One JSON object per line, appended, never rewritten; the events carry DICOM audit codes
(PS3.16 CID 400 "Audit Event ID", CID 401 "Audit Event Type Code", scheme DCM) so a hospital's audit
repository can map them to its ATNA records.

Codes used (and why):
- 110112 "Query": every search and every read of tumours.
- 110113 "Security Alert" with event type 110122 "Login": a request refused with 401 (a failed
  authentication attempt). Strict PS3.15 A.5.3 would file a failed log-on as 110114 "User Authentication";
  it is kept a Security Alert so one query finds every refusal.
- 110113 "Security Alert" with event type 110132 "Use of Restricted Function": a 403.
- 110113 "Security Alert" with event type 110137 "User Security Attributes Changed": API key created or
  deleted. 110137 is a CID 401 event *type*, not a CID 400 event ID (PS3.15 A.5.3.11 files it under
  Security Alert); 110127 is "Emergency Override Started" and does not fit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from flask import Flask, Response, current_app, g, has_request_context, request

from services.gateway.callers import Caller

log = logging.getLogger("tumorsearch.gateway")

QUERY = "110112"
SECURITY_ALERT = "110113"
USER_AUTHENTICATION = "110114"
LOGIN = "110122"
USE_OF_RESTRICTED_FUNCTION = "110132"
USER_SECURITY_ATTRIBUTES_CHANGED = "110137"
DCM_MEANINGS = {
    QUERY: "Query",
    SECURITY_ALERT: "Security Alert",
    USER_AUTHENTICATION: "User Authentication",
    LOGIN: "Login",
    USE_OF_RESTRICTED_FUNCTION: "Use of Restricted Function",
    USER_SECURITY_ATTRIBUTES_CHANGED: "User Security Attributes Changed",
}
EXTENSION = "tumorsearch.audit"


def _coded(code: str) -> dict:
    if code not in DCM_MEANINGS:
        raise ValueError(f"expected a DCM audit code among {sorted(DCM_MEANINGS)}; found {code!r}")
    return {"code": code, "scheme": "DCM", "meaning": DCM_MEANINGS[code]}


class AuditLog:
    """Append-only JSON lines. The file is opened with O_APPEND and every event is one write(2), so lines
    from threads (a lock) and from other processes (the kernel's append position) never interleave."""

    def __init__(self, path: Path, fsync: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0o600: the trail names users and studies; only the gateway's account reads it.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._fsync = fsync  # on: an event survives a power cut once record() returns, at ~ms per event
        self._lock = threading.Lock()

    def record(self, caller: Caller | None, event: str, code: str, query: dict[str, Any],
               returned_studies: list[str], outcome: Literal["success", "failure"], *,
               type_code: str | None = None, source_ip: str | None = None) -> None:
        """Raises OSError when the event cannot be written: a query whose audit is lost must not be
        answered as if it had been recorded."""
        if outcome not in ("success", "failure"):
            raise ValueError(f"expected outcome 'success' or 'failure'; found {outcome!r}")
        entry: dict[str, Any] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event_code": _coded(code),
        }
        if type_code is not None:
            entry["event_type_code"] = _coded(type_code)
        actor = None if caller is None else {"name": caller.name, "role": caller.role, "method": caller.method}
        if source_ip is None and has_request_context():
            source_ip = request.remote_addr
        entry.update(event=event, actor=actor, query=query, returned_studies=list(returned_studies),
                     outcome=outcome, source_ip=source_ip)
        self._write((json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode())

    def _write(self, data: bytes) -> None:
        with self._lock:
            written = os.write(self._fd, data)  # unbuffered: nothing to flush
            if self._fsync:
                os.fsync(self._fd)
        if written != len(data):  # only on a full disk or a signal; the line is then incomplete
            raise OSError(f"expected to append {len(data)} bytes to the audit log {self.path}; wrote {written}")

    def close(self) -> None:
        os.close(self._fd)


def record_query(event: str, query: dict[str, Any], returned_studies: list[str],
                 outcome: Literal["success", "failure"] = "success") -> None:
    """In a view: audit a query (110112) by `g.caller` in the app's AuditLog. An app built without an
    audit log (some unit tests) records nothing; `install_audit_of_failures` installs one."""
    audit: AuditLog | None = current_app.extensions.get(EXTENSION)
    if audit is not None:
        audit.record(g.get("caller"), event, QUERY, query, returned_studies, outcome)


def install_audit_of_failures(app: Flask, audit: AuditLog) -> None:
    """Stores `audit` in `app.extensions["tumorsearch.audit"]` and records every 401/403 answer as a
    security alert: method, path (without query string) and the refusal's description, never a credential
    (descriptions from auth.py never contain one)."""
    app.extensions[EXTENSION] = audit

    @app.after_request
    def _audit_refusal(response: Response) -> Response:
        if response.status_code not in (401, 403):
            return response
        details = response.get_json(silent=True) if response.is_json else None
        query = {"method": request.method, "path": request.path,
                 "reason": (details or {}).get("detail", ""), "credential": _credential_kind()}
        type_code = LOGIN if response.status_code == 401 else USE_OF_RESTRICTED_FUNCTION
        event = "authentication refused" if response.status_code == 401 else "access refused"
        try:
            audit.record(g.get("caller"), event, SECURITY_ALERT, query, [], "failure", type_code=type_code)
        except OSError:
            # The refusal stands either way; failing it with a 500 would only hide the 401 from the client.
            log.exception("could not record a security alert in the audit log")
        return response


def _credential_kind() -> str:
    """Which kind of credential came (not its value): enough to tell a probe from an expired login."""
    if request.headers.get("X-API-Key"):
        return "api-key"
    authorization = request.headers.get("Authorization", "")
    if not authorization:
        return "none"
    return "api-key" if authorization.partition(" ")[2].strip().startswith("tsk_") else "bearer"
