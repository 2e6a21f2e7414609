"""A series as a volume in patient space: frames ordered along the slice normal, spacing checked,
rescale applied, and the LPS affine kept. Series that do not form one consistent volume are reported
(SeriesError with the reason), never guessed at.

Every check that needs only the headers runs before any pixel is decoded, the declared size first:
a file declaring 60000 x 60000 x 1000 frames is refused without allocating anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pydicom

from services.worker.errors import SeriesError
from services.worker.frame_geometry import FrameGeometry, frame_geometries
from services.worker.study_files import Series

SPACING_TOLERANCE = 0.1  # relative: slice gaps may differ by 10 % (rounding in the headers), not more


@dataclass(frozen=True)
class Volume:
    pixels: np.ndarray            # (K, rows, cols) float32, rescaled, slice k at sources[k]
    affine: np.ndarray            # 4x4: (column i, row j, slice k, 1) -> patient LPS mm
    spacing_mm: tuple[float, float, float]  # between rows, between columns, between slices
    sources: list[tuple[int, int]]  # per slice: (instance index in the series, frame index)

    @property
    def slices(self) -> int:
        return self.pixels.shape[0]

    def to_patient(self, k: float, row: float, col: float) -> np.ndarray:
        return (self.affine @ np.array([col, row, k, 1.0]))[:3]


def declared_bytes(series: Series) -> int:
    total = 0
    for instance in series.instances:
        h = instance.header
        total += int(h.Rows) * int(h.Columns) * instance.frames * int(h.BitsAllocated) // 8 * int(
            getattr(h, "SamplesPerPixel", 1) or 1)
    return total


def check_series(series: Series, max_bytes: int) -> list[FrameGeometry]:
    """Header-only checks; returns the frames ordered along the normal, or raises SeriesError."""
    try:
        size = declared_bytes(series)
    except (AttributeError, TypeError, ValueError):
        raise SeriesError("image size: expected Rows, Columns and BitsAllocated in every image, found one "
                          "without them") from None
    if size > max_bytes:
        raise SeriesError(f"declared pixel data: expected at most {max_bytes} bytes, found {size}")
    frames = frame_geometries(series)
    shapes = {(f.rows, f.cols) for f in frames}
    if len(shapes) != 1:
        raise SeriesError(f"image sizes: expected one size in the series, found {sorted(shapes)}")
    if any(not np.allclose(f.orientation, frames[0].orientation, atol=1e-3) for f in frames):
        raise SeriesError("orientation: expected one ImageOrientationPatient in the series, found several")
    if any(not np.allclose(f.pixel_spacing, frames[0].pixel_spacing, rtol=1e-3) for f in frames):
        raise SeriesError("pixel spacing: expected one PixelSpacing in the series, found several")
    ordered = sorted(frames, key=lambda f: f.distance)
    _check_gaps([f.distance for f in ordered])
    return ordered


def _check_gaps(distances: list[float]) -> None:
    gaps = np.diff(distances)
    if len(gaps) and gaps.min() < 1e-3:
        raise SeriesError("slice positions: expected distinct positions along the normal, found duplicates")
    if len(gaps) >= 2:
        median = float(np.median(gaps))
        worst = float(np.abs(gaps - median).max())
        if worst > SPACING_TOLERANCE * median:
            raise SeriesError(f"slice spacing: expected even gaps of {median:.2f} mm (missing slices?), "
                              f"found a gap of {median + worst:.2f} mm")


def build_volume(series: Series, max_bytes: int) -> tuple[Volume, list[pydicom.Dataset]]:
    """(the volume, the series' datasets with pixel data, in instance order) — the datasets feed the SEG."""
    ordered = check_series(series, max_bytes)
    datasets = [pydicom.dcmread(i.path) for i in series.instances]
    pixels = np.empty((len(ordered), ordered[0].rows, ordered[0].cols), np.float32)
    decoded: dict[int, np.ndarray] = {}
    for k, frame in enumerate(ordered):
        if frame.instance not in decoded:
            decoded[frame.instance] = _decode(datasets[frame.instance])
        data = decoded[frame.instance]
        pixels[k] = (data[frame.frame] if data.ndim == 3 else data) * frame.slope + frame.intercept
    return Volume(pixels, _affine(ordered), _spacing(ordered), [(f.instance, f.frame) for f in ordered]), datasets


def _decode(dataset: pydicom.Dataset) -> np.ndarray:
    try:
        return dataset.pixel_array.astype(np.float32)
    except Exception as error:  # noqa: BLE001 - any decoder failure is a property of this series
        raise SeriesError(f"pixel data: expected decodable pixels, found {type(error).__name__}: "
                          f"{str(error)[:120]}") from None


def _spacing(ordered: list[FrameGeometry]) -> tuple[float, float, float]:
    row_mm, col_mm = ordered[0].pixel_spacing
    if len(ordered) > 1:
        between = float(np.median(np.diff([f.distance for f in ordered])))
    else:
        between = ordered[0].thickness or 1.0
    return float(row_mm), float(col_mm), between


def _affine(ordered: list[FrameGeometry]) -> np.ndarray:
    first = ordered[0]
    row_mm, col_mm, between = _spacing(ordered)
    affine = np.eye(4)
    affine[:3, 0] = first.row_direction * col_mm      # along a row: the column index grows
    affine[:3, 1] = first.column_direction * row_mm   # down a column: the row index grows
    affine[:3, 2] = first.normal * between
    affine[:3, 3] = first.position
    return affine
