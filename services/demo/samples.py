"""The demo's sample studies: a mix of the figshare set's three tumour types from several folds, written as
DICOM by `services.dicomize` (idempotent: a second demo run reuses the same studies and UIDs).

The images are chosen deterministically (the first of each type and fold in labels.csv order, types and folds
interleaved), so `--studies 6` gives all three types from five folds and a re-run sends the same studies.
"""

from __future__ import annotations

import csv
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from shared.config.data import DataSettings


DATA_ENV = "TUMORSEARCH_DATA_DIR"
LABELS = ("meningioma", "glioma", "pituitary")


class DemoError(RuntimeError):
    """The demo cannot go on; the message says what to do. `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Sample:
    image_id: int
    label: str
    fold: int
    patient_id: str
    study_uid: str
    folder: Path

    @property
    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.dcm"))


def figshare_dir(settings: DataSettings) -> Path:
    """figshare-cetumor/ of the data folder; DemoError (exit 2) naming where it goes when labels.csv is missing."""
    root = settings.figshare_dir.resolve()
    if not (root / "labels.csv").is_file():
        raise DemoError(
            f"expected the figshare sample data at {root / 'labels.csv'} (with images/ beside it), found no such "
            f"file.\nPut the project's data folder at {root.parent} (so that it holds figshare-cetumor/labels.csv "
            f"and figshare-cetumor/images/; see its README.md), or set {DATA_ENV} to the folder that holds "
            f"figshare-cetumor/, e.g.\n  {DATA_ENV}=/path/to/data make demo", code=2)
    return root


def choose(rows: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    """`count` rows of labels.csv: types and folds interleaved, each group's rows in file order."""
    groups: dict[tuple[str, int], deque] = {}
    for row in rows:
        groups.setdefault((row["label"].strip(), int(row["fold"])), deque()).append(row)
    labels = [label for label in LABELS if any(key[0] == label for key in groups)]
    labels += sorted({key[0] for key in groups} - set(labels))
    folds = sorted({key[1] for key in groups})
    order: list[tuple[str, int]] = []
    for turn in range(len(folds)):  # 3 types x 5 folds: the first 15 picks are 15 different (type, fold)
        for index, label in enumerate(labels):
            order.append((label, folds[(turn * len(labels) + index) % len(folds)]))
    order = [key for key in dict.fromkeys(order + sorted(groups)) if key in groups]
    chosen: list[dict[str, str]] = []
    while len(chosen) < count and any(groups[key] for key in order):
        for key in order:
            if groups[key] and len(chosen) < count:
                chosen.append(groups[key].popleft())
    return chosen


def write_selection(root: Path, selection: Path, count: int) -> list[int]:
    """A figshare folder view holding only the chosen rows (its images/ is a link to the real one), so the
    dicomize function writes exactly those; the image ids in demo order."""
    with (root / "labels.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    missing = {"image_id", "label", "fold"} - set(fields)
    if missing:
        raise DemoError(f"{root / 'labels.csv'}: expected the columns image_id, label and fold, found {fields}", 2)
    chosen = choose(rows, count)
    selection.mkdir(parents=True, exist_ok=True)
    partial = selection / "labels.csv.partial"
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(chosen)
    os.replace(partial, selection / "labels.csv")
    images = selection / "images"
    if images.is_symlink() or images.exists():
        if images.is_symlink() and Path(os.readlink(images)) == root / "images":
            return [int(row["image_id"]) for row in chosen]
        if not images.is_symlink():
            raise DemoError(f"{images}: expected a link to the figshare images, found a folder; remove it")
        images.unlink()
    images.symlink_to(root / "images", target_is_directory=True)
    return [int(row["image_id"]) for row in chosen]


def read_samples(out: Path, image_ids: list[int]) -> list[Sample]:
    """The written studies of `image_ids` (in that order) from OUT/mapping.csv."""
    with (out / "mapping.csv").open(newline="") as handle:
        rows = {int(row["image_id"]): row for row in csv.DictReader(handle)}
    samples = []
    for image_id in image_ids:
        row = rows.get(image_id)
        if row is None:
            raise DemoError(f"{out / 'mapping.csv'}: expected a row for image {image_id}, found none")
        samples.append(Sample(image_id, row["label"], int(row["fold"]), row["patient_id"],
                              row["study_instance_uid"], out / row["folder"]))
    return samples
