"""A NIfTI/NRRD volume as one DICOM MR series, with the lesion of an optional mask described in voxels.

Layout (one volume per output folder): OUT/series/slice0000.dcm..., OUT/mapping.csv (source path and the
generated UIDs; never in the DICOM) and, with a mask, OUT/lesion.json. The patient is synthetic
(`VOLUME-<hash of the source path>`); nothing of the source file but its voxels and grid is written.

lesion.json gives the mask's voxels (any value > 0) in the written series: `box_voxels` is
(slice0, row0, column0, slice1, row1, column1), end exclusive, with slices in the order a DICOM reader (and
the worker) puts them, along the image normal (row x column direction), the same convention as the worker's
tumour box; `box_file_order` is the same box with slice k = the file slice<k>.dcm (InstanceNumber k + 1).
Resumable like the figshare mode: the series is written into OUT/.partial-series/ and renamed when complete;
its SOP Instance UIDs are derived from the series UID, so writing it again never hands out new UIDs.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from shared.dicomize.output import (DicomizeError, MappingFile, Summary, exclusive, fresh_partial, header_uids,
                                      write_json)
from shared.dicomize.writer import StudyIds, affine_lps_from_file, write_volume_series

SERIES = "series"
LESION = "lesion.json"
COLUMNS = ("source", "patient_id", "study_instance_uid", "series_instance_uid", "slices", "folder")
# Millimetres two grids' affines may differ by and still be one grid (headers stored as float32).
GRID_TOLERANCE_MM = 1e-3
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def dicomize_volume(image: Path, out: Path, *, mask: Path | None = None, description: str = "T1 post-contrast",
                    transfer_syntax: str = ExplicitVRLittleEndian) -> Summary:
    started = time.monotonic()
    image, out = Path(image), Path(out)
    volume, affine = _read(image, affine_lps_from_file)
    lesion = _lesion(image, Path(mask), volume.shape, affine) if mask is not None else None
    source, patient_id = str(image.resolve()), synthetic_patient_id(image)
    written = 0
    with exclusive(out):
        mapping = MappingFile(out, COLUMNS, "folder").load()
        row = mapping.rows.get(SERIES)
        if row is not None and row["source"] != source:
            raise DicomizeError(f"{out}: expected the output of {source} or a fresh folder, found the series of "
                                f"{row['source']}; one volume per --out")
        folder = out / SERIES
        if folder.exists():
            _adopt_written(folder, row, len(volume), source, patient_id, mapping)
        else:
            ids = StudyIds.fresh(patient_id) if row is None else StudyIds(
                patient_id, f"Synthetic^{patient_id}", row["study_instance_uid"], row["series_instance_uid"])
            _write_series(image, volume, affine, out, ids, description, transfer_syntax)
            if row is None:
                mapping.append(_row(source, ids.study_uid, ids.series_uid, {"patient_id": patient_id}, len(volume)))
            written = 1
        mapping.rewrite()
        if lesion is not None:
            write_json(out / LESION, lesion)
    return Summary(written, 1 - written, time.monotonic() - started, out)


def _lesion(image: Path, mask: Path, shape: tuple[int, ...], affine) -> dict:
    labels, mask_affine = _read(mask, read_mask)
    check_same_grid(shape, affine, labels.shape, mask_affine, image, mask)
    return {"source": str(image.resolve()), "mask": str(mask.resolve()), "folder": SERIES,
            **lesion_summary(labels, affine)}


def _adopt_written(folder: Path, row: dict | None, slices: int, source: str, patient_id: str,
                   mapping: MappingFile) -> None:
    """A series folder already there: complete, and recorded (or recordable from its own UIDs)."""
    files = sorted(folder.glob("slice*.dcm"))
    if len(files) != slices:
        raise DicomizeError(f"{folder}: expected {slices} slice files, found {len(files)}; remove it "
                            "and run again")
    if row is None:  # written, then the run stopped before its row: take the UIDs from the file
        uids = header_uids(files[0])
        if uids["patient_id"] != patient_id:
            raise DicomizeError(f"{folder}: expected the series of {source} ({patient_id}), found one of "
                                f"{uids['patient_id']}; choose another --out")
        mapping.append(_row(source, uids["study_instance_uid"], uids["series_instance_uid"], uids, slices))


def _write_series(image: Path, volume, affine, out: Path, ids: StudyIds, description: str,
                  transfer_syntax: str) -> None:
    """Write into a fresh partial folder and rename it into place: a stopped run leaves no half series."""
    partial = fresh_partial(out, SERIES)
    try:
        write_volume_series(volume, affine, partial, ids, series_description=description,
                            transfer_syntax=transfer_syntax, instance_uids=instance_uids(ids.series_uid, len(volume)))
    except ValueError as error:  # the writer's refusals (a grid DICOM cannot express, a bad description)
        raise DicomizeError(f"{image}: {error}") from None
    os.rename(partial, out / SERIES)


def synthetic_patient_id(image: Path) -> str:
    """Stable for one source path, and nothing of the file name (which may name a person) in it."""
    return "VOLUME-" + hashlib.sha256(str(Path(image).resolve()).encode()).hexdigest()[:12].upper()


def instance_uids(series_uid: str, count: int) -> list[str]:
    """The same SOP Instance UIDs every time a series is written (derived from its UID and the slice index)."""
    return [generate_uid(entropy_srcs=[series_uid, f"slice{k:04d}"]) for k in range(count)]


def read_mask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels (K, rows, cols) as stored, affine_lps), indexed like affine_lps_from_file's volume; any value > 0
    is lesion. Not through affine_lps_from_file: masks may be float (probabilities) or wider integers."""
    from shared.model.volumes import read_volume  # imports torch; only the volume mode needs it

    data, affine_ras = read_volume(Path(path))
    return np.ascontiguousarray(np.transpose(np.asarray(data), (2, 1, 0))), RAS_TO_LPS @ np.asarray(affine_ras, float)


def check_same_grid(shape: tuple[int, ...], affine: np.ndarray, mask_shape: tuple[int, ...], mask_affine: np.ndarray,
                    image: Path, mask: Path) -> None:
    if tuple(mask_shape) != tuple(shape):
        raise DicomizeError(f"{mask}: expected the grid of {image}, (slices, rows, columns) {tuple(shape)}, found "
                            f"{tuple(mask_shape)}; resample the mask onto the image first")
    if not np.allclose(mask_affine, affine, rtol=0, atol=GRID_TOLERANCE_MM):
        raise DicomizeError(f"{mask}: expected the voxel-to-patient affine of {image}, {np.round(affine, 4).tolist()}, "
                            f"found {np.round(mask_affine, 4).tolist()}; resample the mask onto the image first")


def slices_reversed(affine: np.ndarray) -> bool:
    """Whether slice k of a (K, rows, cols) volume with this voxel-to-patient affine runs against the image
    normal, so that a DICOM reader (and the worker) numbers the written slices in the opposite order."""
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    return bool(affine[:3, 2] @ normal < 0)


def lesion_summary(labels: np.ndarray, affine: np.ndarray) -> dict[str, object]:
    """The voxels > 0 of `labels` (K, rows, cols) in the written series' indices; see the module docstring."""
    lesion = np.asarray(labels) > 0
    count, slices = int(lesion.sum()), lesion.shape[0]
    reversed_order = slices_reversed(affine)
    summary: dict[str, object] = {
        "convention": "box_voxels: (slice0, row0, column0, slice1, row1, column1), end exclusive, slices ordered "
                      "along the image normal as a DICOM reader and the worker order them; box_file_order: the "
                      "same with slice k = slice<k>.dcm (InstanceNumber k + 1)",
        "shape": list(lesion.shape), "voxels": count,
        "volume_mm3": round(count * abs(float(np.linalg.det(affine[:3, :3]))), 3),
        "labels": _label_values(labels[lesion]),
        "slices_reversed": reversed_order,
        "box_voxels": None, "box_file_order": None, "instance_numbers": None, "centroid_mm": None,
    }
    if count == 0:
        return summary
    k, j, i = np.nonzero(lesion)
    file_box = [int(k.min()), int(j.min()), int(i.min()), int(k.max()) + 1, int(j.max()) + 1, int(i.max()) + 1]
    reader_box = list(file_box)
    if reversed_order:
        reader_box[0], reader_box[3] = slices - file_box[3], slices - file_box[0]
    centroid = affine @ np.array([i.mean(), j.mean(), k.mean(), 1.0])
    summary.update(box_voxels=reader_box, box_file_order=file_box, instance_numbers=[file_box[0] + 1, file_box[3]],
                   centroid_mm=[round(float(v), 3) for v in centroid[:3]])
    return summary


def _label_values(values: np.ndarray, most: int = 32) -> list[int] | None:
    """The distinct lesion labels (e.g. [1, 2] for a BraTS-style segmentation); None for a probability map."""
    distinct = np.unique(values)
    if len(distinct) > most or not np.array_equal(distinct, np.round(distinct)):
        return None
    return [int(v) for v in distinct]


def _read(path: Path, reader) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001 - one of the two readers above
    if not path.is_file():
        raise DicomizeError(f"expected a NIfTI (.nii, .nii.gz) or NRRD (.nrrd, .nhdr) file at {path}, found nothing")
    try:
        return reader(path)
    except ValueError as error:
        raise DicomizeError(str(error)) from None


def _row(source: str, study_uid: str, series_uid: str, uids: dict[str, str], slices: int) -> dict[str, object]:
    return {"source": source, "patient_id": uids["patient_id"], "study_instance_uid": study_uid,
            "series_instance_uid": series_uid, "slices": slices, "folder": SERIES}
