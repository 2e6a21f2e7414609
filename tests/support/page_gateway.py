"""The page tests' system: a real index (nine figshare fold-5 slices run through the worker pipeline, one
synthetic patient each, statuses in Redis) behind two real `tumorsearch gateway` processes, and helpers to
read the rendered page (tests/e2e/test_gateway_page*.py)."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis
from PIL import Image
from pydicom.uid import generate_uid

from shared.shipped_model import shipped_model_version
from services.worker.pipeline import PipelineConfig, process_study
from services.worker.runtime import load_runtime
from services.worker.tumours import SizeLimits
from shared.config.programs import WorkerSection
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import StudyReady
from shared.contracts.vectors import collection_name
from shared.dicomize.writer import StudyIds, write_slice_study
from shared.model.checkpoint import SHIPPED
from shared.study_status_store import StudyStatusStore
from support.browser import Node
from support.ports import free_port
from support.processes import running
from support.servers import start_redis
from support.worker import TUMORSEARCH, WorkerSystem, worker_system

REPO = Path(__file__).resolve().parents[2]  # tests/support/ -> the repository
ARTEFACTS = REPO / "var" / "test-artifacts"
# Fold 5 of figshare (never trained on), three per type.
IMAGES = {"glioma": (1873, 1874, 1872), "meningioma": (17, 18, 87), "pituitary": (940, 944, 1003)}
TYPES = tuple(IMAGES)
ADMIN_KEY = "page-test-" + "k" * 40  # the keyed gateway's bootstrap admin key (at least 32 characters)


# ------------------------------------------------------------------ a real index behind a real gateway

FAILED_REASON = "series 1.2.3: expected evenly spaced slices, found a gap of 12.0 mm (slice spacing 6.0 mm)"


@dataclass
class Gateway:
    url: str
    tumours: dict[str, list[str]]  # expert type -> point ids found in those studies
    studies: dict[int, str]        # image id -> study UID
    payloads: dict[str, dict]      # point id -> payload
    failed_study: str = ""
    processing_study: str = ""
    keyed_url: str = ""  # a gateway with authentication on (ADMIN_KEY)

    def page(self, **query: str | list[str]) -> str:
        return f"{self.url}/ui/?{urllib.parse.urlencode(query, doseq=True)}"

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())


def index_figshare(system: WorkerSystem, data_dir: Path, workdir: Path, redis_url: str) -> Gateway:
    """The worker pipeline in-process on each image (one synthetic patient each), statuses in Redis."""
    section = WorkerSection()
    layout = system.layout
    layout.ensure()
    config = PipelineConfig(layout, section.series_rule, 1 << 30,
                            SizeLimits(section.min_tumor_area_mm2, section.min_tumor_volume_mm3), b"page-test-key")
    runtime = load_runtime(SHIPPED, "cpu")
    statuses = StudyStatusStore(redis.Redis.from_url(redis_url))
    store = system.store
    tumours: dict[str, list[str]] = {t: [] for t in TYPES}
    studies: dict[int, str] = {}
    root = data_dir / "figshare-cetumor"
    for expert_type, image_ids in IMAGES.items():
        for image_id in image_ids:
            image = np.asarray(Image.open(root / "images" / f"{image_id}.png").convert("L")).astype(np.uint16)
            files = write_slice_study(image, 0.98, workdir / "dicom" / str(image_id),
                                      StudyIds.fresh(f"PAGE-TEST-{image_id:04d}"))
            study_uid = system.place(files)
            message = StudyReady(study_instance_uid=study_uid, location=layout.study_location(study_uid),
                                 instance_count=len(files), handover=1)
            status = process_study(message, runtime, store, config)
            statuses.put(status)
            assert status.state in ("done", "no_tumour"), status
            tumours[expert_type] += status.point_ids
            studies[image_id] = study_uid
    ids = [i for found in tumours.values() for i in found]
    payloads = {p.id: p.payload for p in store.retrieve(collection_name(shipped_model_version()), ids)}
    # Two studies as the worker leaves them when things go wrong or take time (written as it writes them).
    failed, processing = generate_uid(), generate_uid()
    statuses.put(StudyStatus(study_instance_uid=failed, state="failed", reason=FAILED_REASON,
                             model_version=runtime.model_version, updated_at=time.time()))
    statuses.put(StudyStatus(study_instance_uid=processing, state="processing", updated_at=time.time()))
    return Gateway("", tumours, studies, payloads, failed, processing)


@contextmanager
def indexed_gateway(workdir: Path, data_dir: Path) -> Iterator[Gateway]:
    """Redis, the worker pipeline run on IMAGES, and two gateways on that index (open, and keyed)."""
    with ExitStack() as stack:
        redis_server = stack.enter_context(start_redis(workdir / "redis"))
        system = stack.enter_context(worker_system(workdir, redis_server.url, start=False))
        index = index_figshare(system, data_dir, workdir, redis_server.url)
        # The local demo's gateway (no authentication), and one that wants a key, on the same index.
        index.url = stack.enter_context(serving_gateway(workdir / "gateway.log", system.env,
                                                        TUMORSEARCH_GATEWAY__AUTH_DISABLED="true"))
        index.keyed_url = stack.enter_context(serving_gateway(workdir / "gateway-keyed.log", system.env,
                                                              TUMORSEARCH_GATEWAY__BOOTSTRAP_ADMIN_KEY=ADMIN_KEY))
        yield index


@contextmanager
def serving_gateway(log: Path, base_env: dict[str, str], **settings: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(base_env, TUMORSEARCH_GATEWAY__PORT=str(port), **settings)
    with running([str(TUMORSEARCH), "gateway"], log, env=env,
                 ready=lambda: urllib.request.urlopen(url + "/healthz", timeout=1).status == 200,
                 what=f"200 from {url}/healthz", timeout=60, name="gateway"):
        yield url


def a_glioma(gateway: Gateway) -> str:
    """A tumour of an expert-labelled glioma study that the model also calls a glioma."""
    for point_id in gateway.tumours["glioma"]:
        if gateway.payloads[point_id]["tumor_type"] == "glioma":
            return point_id
    raise AssertionError(f"expected the model to call one of the glioma studies' tumours a glioma; found "
                         f"{[gateway.payloads[p]['tumor_type'] for p in gateway.tumours['glioma']]}")


def result_cards(dom: Node) -> list[Node]:
    return dom.testid("result")


def card_type(card: Node) -> str:
    [label] = card.testid("result-type")
    return label.all_text()


def thumbs(node: Node) -> list[Node]:
    return [img for img in node.find_all("img") if "thumb" in img.attrs.get("class", "").split()]
