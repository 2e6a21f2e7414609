"""A 3D checkpoint (dims 3) runs on the whole volume in the worker: a short training on the real volumes,
then the TCGA-GBM brain1 series written as DICOM goes through the pipeline with it. Proves the path (the
status names the 3D model, boxes lie in the volume, the SEG reads back), not accuracy."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from services.bench.worker_study import place_study
from services.worker.pipeline import PipelineConfig, process_study
from services.worker.runtime import load_runtime
from services.worker.tumours import SizeLimits
from shared.contracts.storage import StudyLayout
from shared.contracts.tasks import StudyReady
from shared.contracts.vectors import collection_name
from shared.dicomize.writer import StudyIds, affine_lps_from_file, write_volume_series
from shared.model.training3d import Train3DConfig, train3d
from shared.model.volumes import load_volumes
from shared.vectorstore.edge_backend import EdgeStore

pytestmark = pytest.mark.integration


def test_a_3d_checkpoint_processes_a_dicom_volume(tmp_path, data_dir):
    root = data_dir / "volumes"
    csv = tmp_path / "labels.csv"
    csv.write_text("volume_id,image,mask,fold,type\n"
                   f"brain1,{root / 'tcga-gbm-t1c/brain1_image.nrrd'},"
                   f"{root / 'tcga-gbm-t1c/brain1_label.nrrd'},1,glioma\n"
                   f"met,{root / 'brats-met-00110/t1c.nii.gz'},{root / 'brats-met-00110/t1c_pseudo_seg.nii.gz'},1,"
                   "metastasis\n")
    config = Train3DConfig(channels=8, blocks=1, epochs=40, spacing_mm=5.0, shape=(32, 48, 48))
    card = train3d(config, load_volumes(csv, config.spacing_mm, config.shape), tmp_path / "ckpt", "test")
    assert card["architecture"]["dims"] == 3

    volume, affine = affine_lps_from_file(root / "tcga-gbm-t1c/brain1_image.nrrd")
    files = write_volume_series(volume, affine, tmp_path / "dicom", StudyIds.fresh("TEST-3D"))
    layout = StudyLayout(tmp_path / "home")
    layout.ensure()
    study_uid = place_study(layout.home, files)
    runtime = load_runtime(tmp_path / "ckpt", "cpu")
    store = EdgeStore(tmp_path / "vectors")
    message = StudyReady(study_instance_uid=study_uid, location=layout.study_location(study_uid),
                         instance_count=len(files), handover=1)
    status = process_study(message, runtime, store, PipelineConfig(layout, "all", 1 << 30, SizeLimits(0, 0), b"k"))

    # Seeded: 40 short epochs make a model that finds the lesion's region, so boxes and the SEG are exercised.
    assert status.state == "done" and status.model_version.startswith("pisov3d-"), status
    for point in store.retrieve(collection_name(status.model_version), status.point_ids):
        k0, r0, c0, k1, r1, c1 = point.payload["box_voxels"]
        assert 0 <= k0 < k1 <= volume.shape[0] and 0 <= r0 < r1 <= volume.shape[1] and 0 <= c0 < c1 <= volume.shape[2]
        assert point.payload["tumor_type"] in card["tasks"]["type"] and len(point.vector) == 8
    if status.point_ids:  # always, after the assertion above; kept explicit for the reader
        series_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
        seg = hd.seg.segread(layout.segmentation_path(study_uid, series_uid))
        assert len(seg.SegmentSequence) == status.tumours
    assert np.isfinite(status.seconds["model"])
