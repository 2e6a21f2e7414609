"""The first thing every program does: build its settings once, or stop with a message that names the
variable. Takes the environment as an argument (the program passes os.environ)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel

from shared.config.environ import SettingsError, settings_from_environ

M = TypeVar("M", bound=BaseModel)

EXIT_BAD_SETTINGS = 78  # EX_CONFIG (sysexits.h): supervisors do not restart-loop on it blindly


def settings_or_exit(model: type[M], environ: Mapping[str, str], program: str) -> M:
    try:
        return settings_from_environ(model, environ)
    except SettingsError as error:
        print(f"tumorsearch {program}: {error}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None
