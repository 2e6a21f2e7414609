"""Follow the studies through the system via the gateway, and say what came out."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from services.demo.samples import Sample
from services.demo.system import get_json

TERMINAL = ("done", "no_tumour", "failed")
REQUEST_GAP_S = 0.25  # at most 4 requests a second: well under the gateway's default 600 per minute per caller
ROUND_GAP_S = 1.0
THROTTLED_WAIT_S = 5.0


def study_url(gateway: str, study_uid: str) -> str:
    return f"{gateway}/api/v1/studies/{study_uid}"


def states(gateway: str, samples: list[Sample]) -> dict[str, dict]:
    """The gateway's view of each study it knows (404 = not known yet: left out)."""
    found = {}
    for sample in samples:
        status, body = get_json(study_url(gateway, sample.study_uid))
        if status == 200 and body is not None:
            found[sample.study_uid] = body
        time.sleep(REQUEST_GAP_S / 4)
    return found


def wait_processed(gateway: str, samples: list[Sample], timeout_s: float, check_alive: Callable[[], None],
                   progress: bool = True) -> dict[str, dict]:
    """Poll GET /api/v1/studies/{uid} until every study is done, no_tumour or failed (or the time is up): the
    last answer per study, terminal or not."""
    last: dict[str, dict] = {}
    pending = [s.study_uid for s in samples]
    deadline = time.monotonic() + timeout_s
    with tqdm(total=len(samples), desc="processing", unit="study", disable=not progress) as bar:
        while pending and time.monotonic() < deadline:
            check_alive()
            for uid in list(pending):
                status, body = get_json(study_url(gateway, uid))
                if status == 429:
                    time.sleep(THROTTLED_WAIT_S)
                    break
                if status == 200 and body is not None:
                    last[uid] = body
                    if body.get("state") in TERMINAL:
                        pending.remove(uid)
                        bar.update(1)
                bar.set_postfix_str(_waiting(pending, last), refresh=True)
                time.sleep(REQUEST_GAP_S)
            if pending:
                time.sleep(ROUND_GAP_S)
    return last


def _waiting(pending: list[str], last: dict[str, dict]) -> str:
    counts: dict[str, int] = {}
    for uid in pending:
        state = last.get(uid, {}).get("state", "not handed over yet")
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def main_tumor(body: dict | None) -> dict | None:
    """The study's main tumour: the largest of its first series (the worker numbers tumours largest first)."""
    tumors = (body or {}).get("tumors") or []
    return min(tumors, key=lambda t: (t["series_instance_uid"], t["tumor_index"])) if tumors else None


def showcase(samples: list[Sample], results: dict[str, dict]) -> tuple[Sample, dict] | None:
    """The first glioma (by the set's label) with a tumour; else the first study with one."""
    with_tumor = [(s, main_tumor(results.get(s.study_uid))) for s in samples]
    with_tumor = [(s, t) for s, t in with_tumor if t is not None]
    gliomas = [(s, t) for s, t in with_tumor if s.label == "glioma"]
    return (gliomas or with_tumor or [None])[0]


def rows(samples: list[Sample], accepted: dict[str, int], results: dict[str, dict],
         earlier: set[str]) -> list[dict]:
    out = []
    for sample in samples:
        body = results.get(sample.study_uid) or {}
        tumors = body.get("tumors") or []
        main = main_tumor(body)
        out.append({
            "image_id": sample.image_id, "patient_id": sample.patient_id, "study_instance_uid": sample.study_uid,
            "type": sample.label, "fold": sample.fold, "files": len(sample.files),
            "accepted": accepted.get(sample.study_uid, 0),
            "state": body.get("state", "unknown"), "reason": body.get("reason"),
            "tumors": len(tumors), "tumor_ids": [t["id"] for t in tumors],
            "main_tumor_id": main["id"] if main else None,
            "predicted_type": main["labels"]["type"] if main else None,
            "processed_earlier": sample.study_uid in earlier,
        })
    return out


def table(study_rows: list[dict]) -> str:
    header = ("image", "type", "fold", "state", "tumours", "predicted", "study UID")
    lines = [header]
    for row in study_rows:
        state = row["state"] + (" (earlier run)" if row["processed_earlier"] else "")
        lines.append((f"{row['image_id']:04d}", row["type"], str(row["fold"]), state, str(row["tumors"]),
                      row["predicted_type"] or "-", row["study_instance_uid"]))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def write_summary(path: Path, summary: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(partial, path)
