"""`tumorsearch demo` (what `make demo` runs): real figshare studies, dicomized, pushed by a real C-STORE into the
system as `make run` starts it, processed by the worker, and a tumour to show on the web page.

The demo stops the system itself with --no-keep-running, so what it saw while the system ran is checked through
the <home>/demo/summary.json it writes (the gateway's answers for each study and for the chosen tumour)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest

from services.demo.main import command
from support.ports import free_port, port_is_open

pytestmark = pytest.mark.integration

TERMINAL = {"done", "no_tumour", "failed"}


def demo_env(monkeypatch: pytest.MonkeyPatch, home: Path, data_dir: Path | None) -> dict[str, int]:
    """Only this test's TUMORSEARCH_* variables: its own home, free ports, the data folder given."""
    for key in [k for k in os.environ if k.startswith("TUMORSEARCH_")]:
        monkeypatch.delenv(key)
    ports = {"listener": free_port(), "gateway": free_port(), "vectorhost": free_port()}
    monkeypatch.setenv("TUMORSEARCH_HOME", str(home))
    for section, port in ports.items():
        monkeypatch.setenv(f"TUMORSEARCH_{section.upper()}__PORT", str(port))
    if data_dir is not None:
        monkeypatch.setenv("TUMORSEARCH_DATA_DIR", str(data_dir))
    return ports


def running_children() -> list[str]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "multiprocessing" not in " ".join(child.cmdline()):
                found.append(f"{child.pid} {' '.join(child.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return found


def test_demo_pushes_six_real_studies_and_names_a_glioma_on_the_page(tmp_path, monkeypatch, capsys, data_dir):
    home = tmp_path / "home"
    ports = demo_env(monkeypatch, home, data_dir)

    code = command(["--studies", "6", "--no-keep-running"])
    out = capsys.readouterr().out

    assert code == 0, out
    summary = json.loads((home / "demo" / "summary.json").read_text())
    studies = summary["studies"]
    assert len(studies) == 6
    assert {s["type"] for s in studies} == {"meningioma", "glioma", "pituitary"}
    assert len({s["fold"] for s in studies}) >= 3, studies
    assert summary["instances_sent"] == summary["instances_accepted"] == 6
    assert summary["studies_accepted"] == summary["studies_processed"] == 6
    assert all(s["accepted"] == s["files"] == 1 for s in studies), studies
    assert all(s["state"] in TERMINAL for s in studies), studies
    assert any(s["state"] == "done" and s["tumors"] >= 1 for s in studies), studies
    assert summary["ok"] is True

    url = urlsplit(summary["url"])
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", "127.0.0.1", ports["gateway"], "/ui/")
    tumor_id = parse_qs(url.query)["tumor"][0]
    # The first glioma of the set (by its label) that has a tumour, and its main (largest) tumour.
    first_glioma = next(s for s in studies if s["type"] == "glioma" and s["tumors"])
    assert tumor_id == first_glioma["main_tumor_id"] == summary["tumor"]["id"]
    assert tumor_id in first_glioma["tumor_ids"]
    assert summary["tumor"]["type"] == "glioma"
    # While the system ran, the gateway answered for that tumour and served the page.
    assert summary["checks_http_status"] == {"tumor": 200, "page": 200}

    assert f"demo: studies=6 accepted=6 processed=6 url={summary['url']} ok=true" in out
    for study in studies:  # the table names every study
        assert study["study_instance_uid"] in out
    # The C-STORE went to this test's listener port, and everything is stopped again.
    assert summary["listener"]["port"] == ports["listener"]
    assert not running_children()
    assert not port_is_open(ports["gateway"]) and not port_is_open(ports["listener"])


def test_demo_without_data_names_the_path_and_starts_nothing(tmp_path, monkeypatch, capsys):
    home, missing = tmp_path / "home", tmp_path / "no-data"
    demo_env(monkeypatch, home, missing)

    assert command([]) == 2

    err = capsys.readouterr().err
    assert str(missing / "figshare-cetumor" / "labels.csv") in err
    assert "TUMORSEARCH_DATA_DIR" in err
    assert not home.exists()
    assert not running_children()
