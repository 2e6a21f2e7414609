"""The real worker process (Celery, real Redis, the vector store host) turns stored DICOM studies into
indexed tumours, a DICOM SEG and a status — or a clear reason why not."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import JPEG2000Lossless

from shared.contracts.vectors import collection_name
from shared.dicomize.figshare import read_labels, read_pixels
from shared.dicomize.volume import slices_reversed
from shared.dicomize.writer import StudyIds, affine_lps_from_file, write_slice_study, write_volume_series
from shared.model.checkpoint import CARD, SHIPPED
from shared.vectorstore.base import Filter, Match
from support.servers import start_redis
from support.worker import WorkerSystem, worker_system

pytestmark = pytest.mark.integration

CLEAR_GLIOMA = 1873  # fold 5 (never trained on): a large glioma the shipped model segments with Dice 0.87
# 0.49 mm pixels on a 256-px image: a 125 mm field of view, 64 px at the model's spacing. A training image
# (fold 1), but trained on centred in a 250 mm frame; here it reaches the network as the worker pads it.
SMALL_FIELD_PITUITARY = 1071
BRAIN1 = "volumes/tcga-gbm-t1c/brain1"


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> WorkerSystem:
    """One worker for the module: it loads the model once, as in production."""
    workdir = tmp_path_factory.mktemp("worker")
    with start_redis(workdir / "redis") as redis_server, worker_system(workdir, redis_server.url) as running:
        yield running


def model_version() -> str:
    import json

    return json.loads((SHIPPED / CARD).read_text())["model_version"]


def figshare_study(data_dir: Path, image_id: int, out: Path) -> tuple[list[Path], np.ndarray]:
    """(the one-slice study at the image's own pixel spacing, the expert mask), read as `dicomize figshare` reads."""
    root = data_dir / "figshare-cetumor"
    image = next((i for i in read_labels(root) if i.image_id == image_id), None)
    assert image is not None, f"expected image {image_id} in {root / 'labels.csv'}, found no such row"
    mask = np.asarray(Image.open(root / "masks" / f"{image_id}.png").convert("L")) > 127
    study = write_slice_study(read_pixels(root, image), image.spacing_mm, out, StudyIds.fresh(f"TEST-{image_id}"))
    return study, mask


def volume_study(data_dir: Path, out: Path, **kwargs) -> tuple[list[Path], np.ndarray]:
    """(the series' files, the lesion in the worker's slice order: along the image normal, which for
    brain1 is the reverse of the file's)."""
    volume, affine = affine_lps_from_file(data_dir / f"{BRAIN1}_image.nrrd")
    label, _ = affine_lps_from_file(data_dir / f"{BRAIN1}_label.nrrd")
    files = write_volume_series(volume, affine, out, StudyIds.fresh("TEST-BRAIN1"), **kwargs)
    lesion = label > 0
    return files, (lesion[::-1] if slices_reversed(affine) else lesion)


def seg_of(system: WorkerSystem, study_uid: str, files: list[Path]) -> tuple[hd.seg.Segmentation, list[str]]:
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    seg = hd.seg.segread(system.layout.segmentation_path(study_uid, str(headers[0].SeriesInstanceUID)))
    return seg, [str(ds.SOPInstanceUID) for ds in headers]


def main_tumour_on_the_expert_mask(system: WorkerSystem, files: list[Path], expert: np.ndarray, tumour_type: str):
    """Process a one-slice study; its main tumour must have the type and segment 1 overlap the expert mask.
    Returns (status, main point)."""
    status = system.process(files)
    assert status.state == "done" and status.tumours >= 1, status
    main = system.store.retrieve(collection_name(model_version()), status.point_ids[:1])[0]
    assert main.payload["tumor_type"] == tumour_type, main.payload
    seg, instances = seg_of(system, status.study_instance_uid, files)
    predicted = seg.get_pixels_by_source_instance(instances, segment_numbers=[1],
                                                  assert_missing_frames_are_empty=True)[0, :, :, 0] > 0
    dice = 2 * (predicted & expert).sum() / (predicted.sum() + expert.sum())
    assert dice > 0.6, f"expected the tumour to overlap the expert mask (Dice > 0.6), found {dice:.2f}"
    return status, main


def test_a_figshare_slice_gives_one_glioma_overlapping_the_expert_mask(system, data_dir, tmp_path):
    files, expert = figshare_study(data_dir, CLEAR_GLIOMA, tmp_path / "slice")
    status, main = main_tumour_on_the_expert_mask(system, files, expert, "glioma")
    assert main.payload["patient_hash"] != "TEST-1873" and len(main.payload["patient_hash"]) == 32
    thumbnail = system.layout.thumbnail_path(status.point_ids[0])
    assert thumbnail.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_small_field_of_view_slice_is_framed_and_its_tumour_found(system, data_dir, tmp_path):
    """On its bare 64-px grid the shipped model finds nothing; the worker pads it to 200 mm (112 px)."""
    files, expert = figshare_study(data_dir, SMALL_FIELD_PITUITARY, tmp_path / "small")
    main_tumour_on_the_expert_mask(system, files, expert, "pituitary")


@pytest.mark.parametrize("transfer_syntax", ["1.2.840.10008.1.2.1", JPEG2000Lossless])
def test_a_real_volume_gives_a_tumour_on_the_labelled_lesion_and_a_seg(system, data_dir, tmp_path, transfer_syntax):
    files, lesion = volume_study(data_dir, tmp_path / "volume", transfer_syntax=transfer_syntax)
    status = system.process(files)
    assert status.state == "done", status
    points = system.store.retrieve(collection_name(model_version()), status.point_ids)
    k0, r0, c0, k1, r1, c1 = points[0].payload["box_voxels"]
    box = np.zeros_like(lesion)
    box[k0:k1, r0:r1, c0:c1] = True
    assert (box & lesion).sum() > 0.3 * lesion.sum(), f"expected tumour 0's box {points[0].payload['box_voxels']} " \
                                                       f"to cover the lesion; covers {(box & lesion).sum()} of {lesion.sum()}"
    seg, _ = seg_of(system, status.study_instance_uid, files)
    assert len(seg.SegmentSequence) == status.tumours
    assert seg.StudyInstanceUID == status.study_instance_uid
    referenced = {str(ref.SeriesInstanceUID) for ref in seg.ReferencedSeriesSequence}
    assert referenced == {str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)}


def test_a_study_without_a_tumour_is_reported_and_indexes_nothing(system, tmp_path):
    gradient = np.tile(np.linspace(0, 1000, 256), (256, 1)).astype(np.uint16)  # anatomy-free phantom
    status = system.process(write_slice_study(gradient, 0.98, tmp_path / "empty", StudyIds.fresh("TEST-EMPTY")))
    assert status.state == "no_tumour" and status.tumours == 0 and status.point_ids == []
    assert system.store.count(collection_name(model_version()),
                              Filter(must=(Match("study_instance_uid", status.study_instance_uid),))) == 0


def test_a_series_with_a_missing_slice_fails_with_a_reason_and_the_worker_lives_on(system, data_dir, tmp_path):
    files, _ = volume_study(data_dir, tmp_path / "gap")
    status = system.process(files[:10] + files[11:])
    assert status.state == "failed" and "slice spacing" in status.reason, status
    assert system.worker.alive
    mixed, _ = figshare_study(data_dir, CLEAR_GLIOMA, tmp_path / "after")
    assert system.process(mixed).state == "done"  # still processing studies


def test_the_same_study_twice_keeps_the_same_points(system, data_dir, tmp_path):
    files, _ = figshare_study(data_dir, CLEAR_GLIOMA, tmp_path / "twice")
    first = system.process(files, handover=1)
    second = system.process(files, handover=2)
    assert second.point_ids == first.point_ids and second.state == "done"
    assert system.store.count(collection_name(model_version()), Filter(
        must=(Match("study_instance_uid", first.study_instance_uid),))) == len(first.point_ids)
