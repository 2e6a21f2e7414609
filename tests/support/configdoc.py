"""The settings table of docs/configuration.md, generated from the programs' settings models.

Regenerate the table after changing a setting:  .venv/bin/python tests/support/configdoc.py --write
"""

from __future__ import annotations

import sys
from pathlib import Path

from services.demo.settings import DemoSettings
from services.dicomize.settings import DicomizeSettings
from services.gateway.settings import GatewaySettings
from services.launcher.settings import RunSettings
from services.listener.settings import ListenerSettings
from services.modeling.settings import ModelSettings
from services.reindex.settings import ReindexSettings
from services.vectorhost.settings import VectorHostSettings
from services.worker.settings import WorkerSettings
from shared.config.describe import markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"

PROGRAMS = {
    "listener": ListenerSettings,
    "worker": WorkerSettings,
    "gateway": GatewaySettings,
    "vectorstore": VectorHostSettings,
    "run": RunSettings,
    "train/evaluate/validate/project/calibrate/expansion/dice": ModelSettings,
    "reindex": ReindexSettings,
    "dicomize": DicomizeSettings,
    "demo": DemoSettings,
}


def expected_table() -> str:
    return markdown_table(PROGRAMS)


def documented_table(text: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"{DOC}: expected the markers {START} and {END} around the settings table")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write() -> None:
    text = DOC.read_text()
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{START}\n{expected_table()}\n{END}{after}")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        print(expected_table())
