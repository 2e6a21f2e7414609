"""`tumorsearch --help` lists one summary per subcommand; they are written by hand (the launcher may not
import the other services), so they are checked against what exists."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from services.bench.main import BENCHES
from services.launcher.cli import SUMMARIES

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_every_entry_point_has_a_summary_and_no_summary_is_orphaned():
    commands = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]["tumorsearch.commands"]
    assert set(SUMMARIES) == set(commands)


def test_the_bench_summary_names_every_benchmark():
    named = re.search(r"`bench ([a-z|]+)`", SUMMARIES["bench"])
    assert named is not None, SUMMARIES["bench"]
    assert set(named.group(1).split("|")) == set(BENCHES)
