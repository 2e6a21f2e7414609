"""dcmtk command-line clients (storescu, echoscu) as a test's "foreign" DICOM peer.

Absolute paths on purpose: inside the venv, pynetdicom installs its own storescu/echoscu scripts that would shadow
dcmtk's on PATH, and the point of these tests is to talk to an independent implementation.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from support.ports import LOCALHOST

STORESCU = Path("/usr/bin/storescu")
ECHOSCU = Path("/usr/bin/echoscu")
# Connection, ACSE and DIMSE timeouts (s): a wedged peer fails the test instead of hanging it.
TIMEOUT_ARGS = ["-to", "10", "-ta", "10", "-td", "30"]


class DcmtkError(RuntimeError):
    """A dcmtk client exited non-zero while the caller asked for check=True."""


def run_tool(tool: Path, args: Sequence[str], *, timeout: float, check: bool) -> subprocess.CompletedProcess:
    if not tool.is_file():
        raise FileNotFoundError(
            f"expected dcmtk's {tool}; not found. Install with: bash deploy/local/system-packages.sh test"
        )
    # TCP_NODELAY: dcmtk reads it from the environment; without it small PDUs wait on Nagle's algorithm.
    env = {**os.environ, "TCP_NODELAY": "1"}
    argv = [str(tool), *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise DcmtkError(
            f"expected {' '.join(argv)} to exit 0; found exit {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


class Dcmtk:
    """The clients, bound to 127.0.0.1 by default; every call returns the CompletedProcess (text output)."""

    def __init__(self, host: str = LOCALHOST) -> None:
        self.host = host

    def echoscu(
        self,
        port: int,
        *,
        called_aet: str = "ANY-SCP",
        calling_aet: str = "ECHOSCU",
        args: Sequence[str] = (),
        timeout: float = 60.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess:
        argv = ["-v", *TIMEOUT_ARGS, "-aet", calling_aet, "-aec", called_aet, *args, self.host, str(port)]
        return run_tool(ECHOSCU, argv, timeout=timeout, check=check)

    def storescu(
        self,
        port: int,
        files: Sequence[Path | str],
        *,
        called_aet: str = "ANY-SCP",
        calling_aet: str = "STORESCU",
        args: Sequence[str] = (),
        timeout: float = 300.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess:
        """C-STORE files in one association (storescu proposes each file's own transfer syntax)."""
        argv = ["-v", *TIMEOUT_ARGS, "-aet", calling_aet, "-aec", called_aet, *args, self.host, str(port)]
        return run_tool(STORESCU, [*argv, *map(str, files)], timeout=timeout, check=check)
