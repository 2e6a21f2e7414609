"""The figshare CE-MRI benchmark (Cheng et al.) as DICOM: one MR study of one slice per image.

Each image gets its own synthetic patient (`FIGSHARE-<id>`): the set has no patient ids, and its folds are
patient-wise, so a patient per image never crosses folds. The fold is recorded in the Clinical Trial
Subject/Study modules as ClinicalTrialTimePointID "fold-N" (what the worker reads); the tumour type is not in
the DICOM, only in OUT/mapping.csv with the generated UIDs.

Layout: OUT/<image id, zero-padded>/slice0000.dcm and OUT/mapping.csv. Resumable: a study is written into
OUT/.partial-<id>/ and renamed into place when complete; an image whose folder and mapping row exist is skipped,
a folder without its row (a crash between the two) gets its row back from the file's header, and a row without
its folder is rewritten with the row's UIDs, so no image ever gets a second set of UIDs.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from tqdm import tqdm

from shared.dicomize.output import (DicomizeError, MappingFile, Summary, exclusive, fresh_partial, header_uids)
from shared.dicomize.writer import StudyIds, write_slice_study

SLICE_THICKNESS_MM = 6.0  # the set's acquisition: 6 mm slices, 1 mm gap (data README)
ID_WIDTH = 4              # 3064 images: folder 0001, patient FIGSHARE-0001
SLICE_FILE = "slice0000.dcm"
COLUMNS = ("image_id", "label", "fold", "patient_id", "study_instance_uid", "series_instance_uid",
           "sop_instance_uid", "folder")
TRIAL = {
    "ClinicalTrialSponsorName": "TumorSearch benchmark",
    "ClinicalTrialProtocolID": "figshare-cetumor",
    "ClinicalTrialProtocolName": "Cheng et al. CE-MRI brain tumor set, patient-wise 5 folds",
    # Type 2, and unknown per image (the set pools two hospitals without saying which image is whose).
    "ClinicalTrialSiteID": "",
    "ClinicalTrialSiteName": "",
}


@dataclass(frozen=True)
class FigshareImage:
    image_id: int
    label: str
    fold: int
    spacing_mm: float

    @property
    def name(self) -> str:
        return f"{self.image_id:0{ID_WIDTH}d}"

    @property
    def patient_id(self) -> str:
        return f"FIGSHARE-{self.name}"

    def clinical_trial(self) -> dict[str, str]:
        return {**TRIAL, "ClinicalTrialSubjectID": self.patient_id, "ClinicalTrialTimePointID": f"fold-{self.fold}",
                "ClinicalTrialTimePointDescription": f"figshare-cetumor benchmark fold {self.fold}"}


def read_labels(root: Path) -> list[FigshareImage]:
    """The rows of ROOT/labels.csv in file order; DicomizeError saying where the data goes when it is missing."""
    labels = Path(root) / "labels.csv"
    if not labels.is_file():
        raise DicomizeError(
            f"expected the figshare set at {Path(root)} ({labels.name} and images/), found no {labels}. Put the "
            "figshare-cetumor/ folder of the project's data there (see ../shared/data/README.md), or set "
            "TUMORSEARCH_DATA_DIR to the folder that holds figshare-cetumor/, or pass --figshare DIR")
    images = []
    with labels.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                image = FigshareImage(int(row["image_id"]), row["label"].strip(), int(row["fold"]),
                                      float(row["pixel_spacing_mm"]))
            except (KeyError, TypeError, ValueError) as error:
                raise DicomizeError(f"{labels}:{line}: expected image_id, label, fold and pixel_spacing_mm, "
                                    f"found {dict(row)} ({error})") from None
            if image.image_id < 0 or not (math.isfinite(image.spacing_mm) and image.spacing_mm > 0):
                raise DicomizeError(f"{labels}:{line}: expected a non-negative image_id and a positive "
                                    f"pixel_spacing_mm, found {image.image_id} and {image.spacing_mm}")
            images.append(image)
    ids = [i.image_id for i in images]
    if len(set(ids)) != len(ids):
        raise DicomizeError(f"{labels}: expected each image_id once, found repeats")
    return images


def select(images: list[FigshareImage], folds: Collection[int] | None, limit: int | None) -> list[FigshareImage]:
    """The images of `folds` (all when None), then the first `limit` of them in labels.csv order."""
    chosen = [i for i in images if folds is None or i.fold in folds]
    return chosen if limit is None else chosen[:limit]


def read_pixels(root: Path, image: FigshareImage) -> np.ndarray:
    """The PNG's 8-bit grey values, as uint16 (what the 16-bit series stores)."""
    path = Path(root) / "images" / f"{image.image_id}.png"
    if not path.is_file():
        raise DicomizeError(f"expected the image {path} (labels.csv names image {image.image_id}), found nothing")
    with Image.open(path) as png:
        if png.mode != "L":
            raise DicomizeError(f"{path}: expected an 8-bit greyscale PNG (mode L), found mode {png.mode}")
        return np.asarray(png).astype(np.uint16)


def dicomize_figshare(root: Path, out: Path, *, folds: Collection[int] | None = None, limit: int | None = None,
                      transfer_syntax: str = ExplicitVRLittleEndian, progress: bool = True) -> Summary:
    started = time.monotonic()
    root, out = Path(root), Path(out)
    chosen = select(read_labels(root), folds, limit)
    written = skipped = 0
    with exclusive(out):
        mapping = MappingFile(out, COLUMNS, "image_id").load()
        try:
            for image in tqdm(chosen, desc="dicomize figshare", unit="image", disable=not progress):
                if _one(root, out, image, mapping, transfer_syntax):
                    written += 1
                else:
                    skipped += 1
        finally:
            mapping.rewrite(sort_key=lambda row: int(row["image_id"]))
    return Summary(written, skipped, time.monotonic() - started, out)


def _one(root: Path, out: Path, image: FigshareImage, mapping: MappingFile, transfer_syntax: str) -> bool:
    """True when the study was written now, False when it was already there."""
    folder, row = out / image.name, mapping.rows.get(str(image.image_id))
    if row is not None:
        _check_row(row, image, mapping)
    if (folder / SLICE_FILE).is_file():
        if row is None:  # written, then the run stopped before its row: take the UIDs from the file
            uids = header_uids(folder / SLICE_FILE)
            if uids["patient_id"] != image.patient_id:
                raise DicomizeError(f"{folder}: expected the study of {image.patient_id}, found one of "
                                    f"{uids['patient_id']}; this --out holds other output")
            mapping.append(_row(image, uids))
        return False
    if folder.exists():
        raise DicomizeError(f"{folder}: expected a complete study ({SLICE_FILE}) or nothing, found a folder without "
                            "it; remove it and run again")
    if row is None:
        ids, instance_uids = StudyIds.fresh(image.patient_id), [generate_uid()]
    else:  # the folder went missing: write it again with the UIDs already handed out
        ids = StudyIds(image.patient_id, f"Synthetic^{image.patient_id}", row["study_instance_uid"],
                       row["series_instance_uid"])
        instance_uids = [row["sop_instance_uid"]]
    partial = fresh_partial(out, image.name)
    try:
        write_slice_study(read_pixels(root, image), image.spacing_mm, partial, ids,
                          slice_thickness_mm=SLICE_THICKNESS_MM, transfer_syntax=transfer_syntax,
                          instance_uids=instance_uids, clinical_trial=image.clinical_trial())
    except ValueError as error:  # the writer's refusals, e.g. an image too small for JPEG 2000
        raise DicomizeError(f"image {image.image_id}: {error}") from None
    os.rename(partial, folder)
    if row is None:
        mapping.append(_row(image, {"patient_id": ids.patient_id, "study_instance_uid": ids.study_uid,
                                    "series_instance_uid": ids.series_uid, "sop_instance_uid": instance_uids[0]}))
    return True


def _row(image: FigshareImage, uids: dict[str, str]) -> dict[str, object]:
    return {"image_id": image.image_id, "label": image.label, "fold": image.fold, **uids, "folder": image.name}


def _check_row(row: dict[str, str], image: FigshareImage, mapping: MappingFile) -> None:
    found = (row["label"], row["fold"], row["patient_id"], row["folder"])
    expected = (image.label, str(image.fold), image.patient_id, image.name)
    if found != expected:
        raise DicomizeError(f"{mapping.path}: expected image {image.image_id} as label, fold, patient, folder "
                            f"{expected}, found {found}; labels.csv changed since that run, use a fresh --out")
