"""Where each frame of a series lies in patient space, for classic single-frame MR and Enhanced MR alike.

Classic MR images carry ImagePositionPatient / ImageOrientationPatient / PixelSpacing at the top level;
an Enhanced MR image carries them in its shared and per-frame functional groups. Both become a list of
FrameGeometry, so volume.py orders and checks frames without knowing which kind it read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.worker.errors import SeriesError
from services.worker.study_files import Series


@dataclass(frozen=True)
class FrameGeometry:
    instance: int                # index of the instance in the series
    frame: int                   # frame within it (0 for single-frame images)
    rows: int
    cols: int
    position: np.ndarray         # ImagePositionPatient (LPS mm) of the first pixel
    orientation: np.ndarray      # the 6 direction cosines
    pixel_spacing: tuple[float, float]  # between rows, between columns (mm)
    thickness: float
    slope: float
    intercept: float

    @property
    def row_direction(self) -> np.ndarray:
        return self.orientation[:3]

    @property
    def column_direction(self) -> np.ndarray:
        return self.orientation[3:]

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_direction, self.column_direction)

    @property
    def distance(self) -> float:
        return float(self.position @ self.normal)


def frame_geometries(series: Series) -> list[FrameGeometry]:
    frames: list[FrameGeometry] = []
    for index, instance in enumerate(series.instances):
        header = instance.header
        try:
            if "PerFrameFunctionalGroupsSequence" in header:
                frames.extend(_enhanced_frames(index, header))
            else:
                frames.append(_classic_frame(index, header))
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            raise SeriesError("geometry: expected ImagePositionPatient, ImageOrientationPatient and PixelSpacing "
                              "for every frame, found a frame without them") from None
    return frames


def _vector(values, length: int) -> np.ndarray:  # noqa: ANN001 - a pydicom multi-value
    array = np.array([float(v) for v in values], dtype=float)
    if array.shape != (length,) or not np.isfinite(array).all():
        raise ValueError(f"expected {length} finite numbers, found {len(array)}")
    return array


def _unit_orientation(values) -> np.ndarray:  # noqa: ANN001
    orientation = _vector(values, 6)
    norms = np.linalg.norm(orientation[:3]), np.linalg.norm(orientation[3:])
    if min(norms) < 1e-6:
        raise ValueError("zero direction cosine")
    return np.concatenate([orientation[:3] / norms[0], orientation[3:] / norms[1]])


def _classic_frame(index: int, header) -> FrameGeometry:  # noqa: ANN001 - a pydicom Dataset
    spacing = _vector(header.PixelSpacing, 2)
    return FrameGeometry(
        index, 0, int(header.Rows), int(header.Columns), _vector(header.ImagePositionPatient, 3),
        _unit_orientation(header.ImageOrientationPatient), (float(spacing[0]), float(spacing[1])),
        float(getattr(header, "SliceThickness", 0) or 0), float(getattr(header, "RescaleSlope", 1) or 1),
        float(getattr(header, "RescaleIntercept", 0) or 0))


def _group(header, frame: int, name: str):  # noqa: ANN001, ANN202 - functional group item, per-frame first
    per_frame = header.PerFrameFunctionalGroupsSequence[frame]
    if name in per_frame:
        return per_frame[name].value[0]
    return header.SharedFunctionalGroupsSequence[0][name].value[0]


def _enhanced_frames(index: int, header) -> list[FrameGeometry]:  # noqa: ANN001
    frames = []
    for f in range(int(header.NumberOfFrames)):
        measures = _group(header, f, "PixelMeasuresSequence")
        spacing = _vector(measures.PixelSpacing, 2)
        slope, intercept = 1.0, 0.0
        try:
            transform = _group(header, f, "PixelValueTransformationSequence")
            slope, intercept = float(transform.RescaleSlope), float(transform.RescaleIntercept)
        except (KeyError, AttributeError, IndexError):
            pass
        frames.append(FrameGeometry(
            index, f, int(header.Rows), int(header.Columns),
            _vector(_group(header, f, "PlanePositionSequence").ImagePositionPatient, 3),
            _unit_orientation(_group(header, f, "PlaneOrientationSequence").ImageOrientationPatient),
            (float(spacing[0]), float(spacing[1])), float(getattr(measures, "SliceThickness", 0) or 0),
            slope, intercept))
    return frames
