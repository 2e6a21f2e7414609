"""The version of a checkpoint, read from its card (plain JSON), for programs that must not import the model
package (torch): the gateway, `tumorsearch reindex` and the benchmarks."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

CARD = "model_card.json"


def shipped_model_version() -> str:
    card = files("shared") / "model" / "checkpoints" / "figshare-2d" / CARD
    return str(json.loads(card.read_text())["model_version"])


def checkpoint_model_version(folder: Path | None) -> str:
    """The version of the checkpoint in `folder` (a worker's TUMORSEARCH_WORKER__CHECKPOINT); None: the shipped one."""
    if folder is None:
        return shipped_model_version()
    card = folder / CARD
    try:
        version = json.loads(card.read_text())["model_version"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"checkpoint: expected {card} with a model_version, found {type(error).__name__}: "
                         f"{error}") from None
    if not isinstance(version, str) or not version:
        raise ValueError(f"checkpoint: expected {card} with a model_version, found {version!r}")
    return version
