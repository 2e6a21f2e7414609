"""A real index for the gateway's tests: figshare fold-5 images written as DICOM studies and processed by
the worker's pipeline in this process (same code as the worker), statuses put where the gateway reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import redis
from PIL import Image

from services.bench.worker_study import place_study
from services.worker.pipeline import PipelineConfig, process_study
from services.worker.runtime import load_runtime
from services.worker.tumours import SizeLimits
from shared.contracts.storage import StudyLayout
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import StudyReady
from shared.dicomize.writer import StudyIds, write_slice_study
from shared.model.checkpoint import SHIPPED
from shared.study_status_store import StudyStatusStore
from shared.vectorstore.base import VectorStore

# Fold 5 (never trained on), three per type, each the main tumour of its own study.
IMAGES = {1873: "glioma", 1874: "glioma", 1872: "glioma", 17: "meningioma", 18: "meningioma", 87: "meningioma",
          940: "pituitary", 944: "pituitary", 1003: "pituitary"}


def build_index(data_dir: Path, home: Path, store: VectorStore, client: redis.Redis,
                patients: dict[int, str] | None = None) -> dict[int, StudyStatus]:
    """Process every image of IMAGES as its own study; `patients` maps image id -> synthetic patient id
    (default: one patient per image). Returns image id -> final status."""
    layout = StudyLayout(home)
    layout.ensure()
    config = PipelineConfig(layout, "post_contrast_t1", 1 << 30, SizeLimits(20, 200), b"test-key")
    runtime = load_runtime(SHIPPED, "cpu")
    statuses = {}
    for image_id in IMAGES:
        path = data_dir / "figshare-cetumor" / "images" / f"{image_id}.png"
        image = np.asarray(Image.open(path).convert("L")).astype(np.uint16)
        patient = (patients or {}).get(image_id, f"TEST-P{image_id}")
        files = write_slice_study(image, 0.98, home.parent / "dicom" / str(image_id), StudyIds.fresh(patient))
        study_uid = place_study(home, files)
        message = StudyReady(study_instance_uid=study_uid, location=layout.study_location(study_uid),
                             instance_count=1, handover=1)
        status = process_study(message, runtime, store, config)
        StudyStatusStore(client).put(status)
        statuses[image_id] = status
    return statuses


def local_deps(work: Path, client: redis.Redis, store: VectorStore, send_task=None, **section):  # noqa: ANN001, ANN201
    """GatewayDeps over local components (the index above, real Redis); `section` sets GatewaySection fields."""
    from services.gateway.deps import GatewayDeps
    from shared.config.programs import GatewaySection
    from shared.shipped_model import shipped_model_version

    return GatewayDeps(readiness={"broker": client.ping}, store=store, redis=client, layout=StudyLayout(work / "home"),
                       model_version=shipped_model_version(), section=GatewaySection(**section),
                       send_task=send_task or (lambda name, kwargs: None), audit_path=work / "audit.jsonl")
