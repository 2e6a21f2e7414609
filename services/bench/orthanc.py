"""Orthanc (Debian's /usr/sbin/Orthanc) as the PACS of `bench system`: started with its own configuration
on free ports, studies uploaded over REST, then pushed to the listener with C-STORE by Orthanc itself
(`POST /modalities/<name>/store`), as a hospital PACS would route them."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ORTHANC = Path("/usr/sbin/Orthanc")
MODALITY = "tumorsearch"
NAME = "tumorsearch-bench-pacs"  # what /system must answer: our Orthanc, not whoever holds the port


def orthanc_config(workdir: Path, http_port: int, dicom_port: int, listener: tuple[str, int]) -> dict[str, Any]:
    """The whole configuration (nothing read from /etc/orthanc); the listener is the one modality."""
    return {
        "Name": NAME, "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "PACS",
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "StorageDirectory": str(workdir / "storage"), "IndexDirectory": str(workdir / "index"),
        "Plugins": [], "LuaScripts": [], "SaveJobs": False,
        "DicomModalities": {MODALITY: {"AET": listener[0], "Host": "127.0.0.1", "Port": listener[1]}},
        # Release the association right after the last C-STORE, as a PACS routing one study does.
        "DicomAssociationCloseDelay": 0,
    }


class OrthancPacs:
    def __init__(self, workdir: Path, http_port: int, dicom_port: int, listener: tuple[str, int]) -> None:
        self.url = f"http://127.0.0.1:{http_port}"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "orthanc.json").write_text(json.dumps(orthanc_config(workdir, http_port, dicom_port, listener)))
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "OrthancPacs":
        if not ORTHANC.exists():
            raise RuntimeError(f"expected Orthanc at {ORTHANC} (Debian package `orthanc`), found nothing")
        with open(self.workdir / "orthanc.log", "ab") as log:
            self.process = subprocess.Popen([str(ORTHANC), "--no-jobs", str(self.workdir / "orthanc.json")],
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                state = "it exited" if self.process.poll() is not None else "it did not answer within 60 s"
                self.__exit__()  # a caller's `with` or ExitStack never exits what failed to enter
                raise RuntimeError(f"expected Orthanc to answer at {self.url}, {state} (a port taken by another "
                                   f"program?); see {self.workdir / 'orthanc.log'}")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def _answers(self) -> bool:
        """True once our Orthanc answers on its HTTP port. Anything else there (refused, not HTTP, another
        server) is "not yet": our Orthanc then fails to bind and exits, which `__enter__` reports."""
        with contextlib.suppress(OSError, urllib.error.URLError, http.client.HTTPException, ValueError):
            answer = self.request("GET", "/system", timeout=5)
            return isinstance(answer, dict) and answer.get("Name") == NAME
        return False

    def request(self, method: str, path: str, body: bytes | dict | None = None, timeout: float = 120) -> Any:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def upload(self, path: Path) -> str:
        """Store one DICOM file; returns Orthanc's id of its study."""
        answer = self.request("POST", "/instances", path.read_bytes())
        if answer.get("Status") not in ("Success", "AlreadyStored"):
            raise RuntimeError(f"expected Orthanc to store {path.name}, found {answer}")
        return str(answer["ParentStudy"])

    def push(self, orthanc_study: str) -> None:
        """C-STORE the study to the listener and return when Orthanc has sent all of it."""
        answer = self.request("POST", f"/modalities/{MODALITY}/store",
                              {"Resources": [orthanc_study], "Synchronous": True})
        if answer.get("FailedInstancesCount", 0):
            raise RuntimeError(f"expected the listener to accept the study, found {answer}")
