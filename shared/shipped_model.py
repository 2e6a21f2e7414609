"""The version of the checkpoint shipped in the package, read from its card (plain JSON), for programs
that must not import the model package (torch): the gateway and the benchmarks."""

from __future__ import annotations

import json
from importlib.resources import files


def shipped_model_version() -> str:
    card = files("shared") / "model" / "checkpoints" / "figshare-2d" / "model_card.json"
    return str(json.loads(card.read_text())["model_version"])
