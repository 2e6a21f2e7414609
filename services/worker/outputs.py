"""What a processed series leaves for people: a thumbnail per tumour (for the gateway) and a DICOM SEG of
the tumours (for PACS), written durably and optionally sent to a configured destination.

The SEG's UIDs are derived from the study, series and model version, so processing a study again
rewrites the same object (PACS replaces it) instead of piling up copies; it is only sent again when
it was not sent before (its UID is recorded in the study status by the task).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from services.worker.segmentation_object import SegmentInfo, build_segmentation, segmentation_bytes, send_segmentation
from services.worker.thumbnail import centre_slice, render
from services.worker.tumours import Tumour
from services.worker.volume import Volume
from shared.contracts.storage import StudyLayout
from shared.contracts.vectors import TumorPayload, point_id

log = logging.getLogger("tumorsearch.worker")


@dataclass(frozen=True)
class SeriesOutputs:
    layout: StudyLayout
    study_uid: str
    series_uid: str
    model_version: str
    seg_destination: str | None
    already_sent_uid: str | None = None  # the SEG the study's last run produced (and sent, if configured)


@dataclass(frozen=True)
class Written:
    segmentation_uid: str | None
    sent_status: int | None = None


def write_outputs(target: SeriesOutputs, volume: Volume, datasets: list[pydicom.Dataset],
                  labels: np.ndarray, tumours: list[Tumour], payloads: list[TumorPayload]) -> Written:
    """`labels`: (K, rows, cols) on the source grid, tumour n = n + 1."""
    if not tumours:
        return Written(None)
    for tumour, item in zip(tumours, payloads):
        k = centre_slice(labels, tumour.index + 1)
        png = render(volume.pixels[k], labels[k] == tumour.index + 1)
        replace_file(target.layout.thumbnail_path(
            point_id(item.study_instance_uid, item.series_instance_uid, item.tumor_index, target.model_version)), png)
    return _segmentation(target, volume, datasets, labels, payloads)


def replace_file(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename: the gateway or a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def segmentation_uids(study_uid: str, series_uid: str, model_version: str) -> tuple[str, str]:
    """(SeriesInstanceUID, SOPInstanceUID) of the SEG: the same for the same study, series and model."""
    seed = [study_uid, series_uid, model_version]
    return generate_uid(entropy_srcs=seed + ["series"]), generate_uid(entropy_srcs=seed + ["instance"])


def _segmentation(target: SeriesOutputs, volume: Volume, datasets: list[pydicom.Dataset], labels: np.ndarray,
                  payloads: list[TumorPayload]) -> Written:
    series_uid, sop_uid = segmentation_uids(target.study_uid, target.series_uid, target.model_version)
    segments = [SegmentInfo(p.tumor_index + 1, p.tumor_type, p.type_probabilities[p.tumor_type]) for p in payloads]
    sources, frame_labels = _in_source_order(volume, datasets, labels)
    seg = build_segmentation(sources, frame_labels, segments, model_version=target.model_version,
                             series_uid=series_uid, sop_instance_uid=sop_uid)
    replace_file(target.layout.segmentation_path(target.study_uid, target.series_uid), segmentation_bytes(seg))
    status = None
    if target.seg_destination and target.already_sent_uid != sop_uid:
        status = send_segmentation(seg, target.seg_destination)
        if status != 0:
            log.warning("segmentation refused by its destination", extra={"status": f"0x{status:04X}"})
    return Written(sop_uid, status)


def _in_source_order(volume: Volume, datasets: list[pydicom.Dataset], labels: np.ndarray
                     ) -> tuple[list[pydicom.Dataset], np.ndarray]:
    """The SEG's sources and label frames in the same order: one dataset per slice for classic MR, the
    multi-frame dataset with its frames in frame order for Enhanced MR."""
    if len(datasets) == 1 and int(getattr(datasets[0], "NumberOfFrames", 1) or 1) > 1:
        frames = np.zeros((int(datasets[0].NumberOfFrames), *labels.shape[1:]), labels.dtype)
        for k, (_, frame) in enumerate(volume.sources):
            frames[frame] = labels[k]
        return datasets, frames
    return [datasets[instance] for instance, _ in volume.sources], labels
