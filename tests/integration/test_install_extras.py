"""What pip would really install for each program's extra (a dry-run resolution, nothing installed)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def resolved(extra: str, tmp_path: Path) -> set[str]:
    report = tmp_path / f"{extra}.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
         "--report", str(report), f"{REPO}[{extra}]"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}


@pytest.mark.parametrize("extra", ["listener", "gateway"])
def test_installing_the_listener_or_the_gateway_does_not_install_torch(extra, tmp_path):
    names = resolved(extra, tmp_path)
    assert "tumorsearch" in names
    assert not {n for n in names if n.startswith(("torch", "nvidia-", "triton"))}, sorted(names)


def test_installing_the_worker_installs_the_pinned_torch(tmp_path):
    names = resolved("worker", tmp_path)
    assert "torch" in names
    assert not {n for n in names if n.startswith("nvidia-")}, "a CUDA build of torch was resolved"
