"""The worker's DICOM SEG reaches a configured destination (a real Orthanc) and is the one on disk."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from services.bench.worker_study import place_study
from services.worker.pipeline import PipelineConfig, process_study
from services.worker.runtime import load_runtime
from services.worker.tumours import SizeLimits
from shared.contracts.storage import StudyLayout
from shared.contracts.tasks import StudyReady
from shared.dicomize.writer import StudyIds, write_slice_study
from shared.model.checkpoint import SHIPPED
from shared.vectorstore.edge_backend import EdgeStore

pytestmark = pytest.mark.integration


def test_the_seg_is_sent_to_the_configured_destination(tmp_path, orthanc, data_dir):
    image = np.asarray(Image.open(data_dir / "figshare-cetumor/images/1873.png").convert("L")).astype(np.uint16)
    files = write_slice_study(image, 0.98, tmp_path / "dicom", StudyIds.fresh("TEST-SEG"))
    layout = StudyLayout(tmp_path / "home")
    layout.ensure()
    study_uid = place_study(layout.home, files)
    config = PipelineConfig(layout, "post_contrast_t1", 1 << 30, SizeLimits(20, 200), b"key",
                            seg_destination=f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}")
    message = StudyReady(study_instance_uid=study_uid, location=layout.study_location(study_uid), instance_count=1,
                         handover=1)
    status = process_study(message, load_runtime(SHIPPED, "cpu"), EdgeStore(tmp_path / "vectors"), config)
    assert status.state == "done" and status.segmentation_sop_instance_uid
    [instance] = orthanc.get("/instances")
    tags = orthanc.get(f"/instances/{instance}/simplified-tags")
    assert tags["Modality"] == "SEG" and tags["SOPInstanceUID"] == status.segmentation_sop_instance_uid
    series_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
    on_disk = pydicom.dcmread(layout.segmentation_path(study_uid, series_uid), stop_before_pixels=True)
    assert on_disk.SOPInstanceUID == status.segmentation_sop_instance_uid
