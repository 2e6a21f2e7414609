"""A region search's embedding: the RoiPool of a box in a stored series (docs/gateway.md, POST /search).

Only the slices the box covers go through the network, so a box on a 155-slice volume costs a few
slices, not the study. The box may come in voxels or in patient millimetres (converted with the series'
own affine); it is clipped to the volume, and an empty box is an error, not a guess.
"""

from __future__ import annotations

import math

import numpy as np

from services.worker.errors import StudyError
from services.worker.runtime import Runtime
from services.worker.study_files import read_study
from services.worker.volume import Volume, build_volume
from shared.contracts.storage import StudyLayout
from shared.contracts.tasks import EmbedRegion, RegionEmbedding
from shared.model.series_inference import embed_box, predict_series, prepare_slices


def embed_region(message: EmbedRegion, runtime: Runtime, layout: StudyLayout, max_bytes: int) -> RegionEmbedding:
    if runtime.dims != 2:
        return RegionEmbedding(error="region search: expected a 2D checkpoint in the worker, found a 3D one")
    try:
        volume = _series_volume(message, layout, max_bytes)
        box = clipped_box(volume, message.box_voxels or patient_box_to_voxels(volume, message.box_patient_mm))
    except StudyError as error:
        return RegionEmbedding(error=str(error))
    k0, r0, c0, k1, r1, c1 = box
    grid = runtime.slice_grid(volume.pixels.shape[1], volume.pixels.shape[2], volume.spacing_mm[:2])
    prediction = predict_series(runtime.model, prepare_slices(volume.pixels[k0:k1], grid), grid, runtime.device)
    sy, sx = grid.scale
    model_box = (0, int(r0 // sy), int(c0 // sx), k1 - k0,
                 max(int(r0 // sy) + 1, math.ceil(r1 / sy)), max(int(c0 // sx) + 1, math.ceil(c1 / sx)))
    vector, _ = embed_box(runtime.model, prediction.coarse, model_box)
    return RegionEmbedding(model_version=runtime.model_version, vector=[float(v) for v in vector], box_voxels=box)


def _series_volume(message: EmbedRegion, layout: StudyLayout, max_bytes: int) -> Volume:
    files = read_study(layout.resolve(message.location))
    series = next((s for s in files.series if s.uid == message.series_instance_uid), None)
    if series is None:
        raise StudyError("series: expected an MR image series of this study with that UID, found none")
    return build_volume(series, max_bytes)[0]


def patient_box_to_voxels(volume: Volume, corners_mm) -> tuple[int, ...]:  # noqa: ANN001 - six floats
    """The voxel box holding every corner of the patient-space box."""
    x0, y0, z0, x1, y1, z1 = corners_mm
    inverse = np.linalg.inv(volume.affine)
    corners = np.array([[x, y, z, 1.0] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)])
    col, row, k = (inverse @ corners.T)[:3]
    return (math.floor(k.min() + 0.5), math.floor(row.min()), math.floor(col.min()),
            math.floor(k.max() + 0.5) + 1, math.ceil(row.max()) + 1, math.ceil(col.max()) + 1)


def clipped_box(volume: Volume, box) -> tuple[int, int, int, int, int, int]:  # noqa: ANN001
    shape = volume.pixels.shape
    lows = [max(0, int(v)) for v in box[:3]]
    highs = [min(n, int(v)) for n, v in zip(shape, box[3:])]
    if any(hi <= lo for lo, hi in zip(lows, highs)):
        raise StudyError(f"box: expected a box overlapping the series volume {list(shape)}, found {list(box)}")
    return (*lows, *highs)
