"""How every program starts: parse its (few) arguments, build its settings once from the environment
it is given, and set up logging. A bad setting stops it here with exit code 78 and a clear message."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel

from shared.config.startup import settings_or_exit
from shared.logs import configure_logging

M = TypeVar("M", bound=BaseModel)


def start_program(program: str, model: type[M], argv: list[str], description: str,
                  environ: Mapping[str, str]) -> M:
    argparse.ArgumentParser(prog=f"tumorsearch {program}", description=description).parse_args(argv)
    settings = settings_or_exit(model, environ, program)
    configure_logging(settings.log.level, settings.log.format, program)
    return settings
