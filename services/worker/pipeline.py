"""One study, from its stored instances to indexed tumours: read, choose series, build volumes, run the
model, find tumours, write thumbnails and the DICOM SEG, upsert, and say what happened (StudyStatus).

Timings per stage are kept (`Stages`) for `tumorsearch bench worker` and the logs. Data problems are
StudyError (the study fails with that reason); anything else propagates to the task (tasks.py), which
retries transient failures and records the rest.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from services.worker.errors import StudyError
from services.worker.indexing import delete_stale, index_series, patient_hash, payload
from services.worker.outputs import SeriesOutputs, write_outputs
from services.worker.runtime import Runtime
from services.worker.series_choice import Choice, SeriesRule, choose_series
from services.worker.study_files import read_study
from services.worker.tumours import SizeLimits, find_tumours, source_labels
from services.worker.volume import Volume, build_volume
from services.worker.volume3d import find_tumours_3d, prepare_volume, source_labels_3d
from shared.contracts.storage import StudyLayout
from shared.contracts.study_status import SeriesReport, StudyStatus
from shared.contracts.tasks import StudyReady
from shared.model.series_inference import predict_series, prepare_slices
from shared.vectorstore.base import VectorStore

log = logging.getLogger("tumorsearch.worker")
STAGES = ("read", "decode", "model", "postprocess", "upsert")


@dataclass(frozen=True)
class PipelineConfig:
    layout: StudyLayout
    series_rule: SeriesRule
    max_image_bytes: int
    limits: SizeLimits
    patient_key: bytes
    seg_destination: str | None = None
    already_sent_uid: str | None = None  # SEG of this study's previous run: not sent again


@dataclass
class Stages:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


def process_study(message: StudyReady, runtime: Runtime, store: VectorStore, config: PipelineConfig,
                  stages: Stages | None = None) -> StudyStatus:
    stages = stages or Stages()
    folder = config.layout.resolve(message.location)
    with stages.stage("read"):
        files = read_study(folder)
        choices = choose_series(files.series, config.series_rule)
    skipped = [f"{s.count} x {s.reason}" for s in files.skipped]
    base = dict(study_instance_uid=message.study_instance_uid, model_version=runtime.model_version,
                skipped=skipped, handover=message.handover)
    if not choices:
        return StudyStatus(state="failed", reason="no MR image series to process", updated_at=time.time(), **base)
    reports, ids, kept = [], [], {}
    for choice in choices:
        report, point_ids, seg_uid = _process_series(choice, message, runtime, store, config, stages)
        reports.append(report)
        ids += point_ids
        if report.error is None:
            kept[choice.series.uid] = len(point_ids)
            base["segmentation_sop_instance_uid"] = base.get("segmentation_sop_instance_uid") or seg_uid
    with stages.stage("upsert"):
        delete_stale(store, runtime.model_version, message.study_instance_uid, kept)
    base["seconds"] = {k: round(v, 3) for k, v in stages.seconds.items()}
    return _status(reports, ids, base)


def _status(reports: list[SeriesReport], ids: list[str], base: dict) -> StudyStatus:
    now = time.time()
    if all(r.error for r in reports):
        reason = "; ".join(sorted({r.error for r in reports if r.error}))
        return StudyStatus(state="failed", reason=reason, series=reports, updated_at=now, **base)
    state = "done" if ids else "no_tumour"
    reason = None if ids else "no tumour found above the minimum size"
    return StudyStatus(state=state, tumours=len(ids), reason=reason, series=reports, point_ids=ids,
                       updated_at=now, **base)


def _process_series(choice: Choice, message: StudyReady, runtime: Runtime, store: VectorStore,
                    config: PipelineConfig, stages: Stages) -> tuple[SeriesReport, list[str], str | None]:
    series = choice.series
    report = dict(series_instance_uid=series.uid, description=series.description[:64], slices=series.frames,
                  chosen_because=choice.reason)
    try:
        with stages.stage("decode"):
            volume, datasets = build_volume(series, config.max_image_bytes)
        with stages.stage("model"):
            tumours, labels = _run_model(runtime, volume, config)
        with stages.stage("postprocess"):
            patient = patient_hash(config.patient_key, str(getattr(series.first, "PatientID", "") or ""),
                                   str(getattr(series.first, "IssuerOfPatientID", "") or ""))
            payloads = [payload(t, message.study_instance_uid, series.uid, runtime.model_version, patient,
                                volume.slices, _fold(series.first), runtime.type_names) for t in tumours]
            outputs = write_outputs(SeriesOutputs(config.layout, message.study_instance_uid, series.uid,
                                                  runtime.model_version, config.seg_destination,
                                                  config.already_sent_uid),
                                    volume, datasets, labels(), tumours, payloads)
        with stages.stage("upsert"):
            ids = index_series(store, runtime.model_version, payloads, [t.embedding for t in tumours],
                               runtime.model.embedding_size)
    except StudyError as error:
        log.warning("series failed", extra={"reason": str(error)})
        return SeriesReport(**report, error=str(error)), [], None
    return SeriesReport(**report, tumours=len(ids)), ids, outputs.segmentation_uid


def _run_model(runtime: Runtime, volume: Volume, config: PipelineConfig):  # noqa: ANN202
    """(tumours, a function giving their label volume on the source grid): a 2D checkpoint slice by slice,
    a 3D one on the volume."""
    if runtime.dims == 3:
        prepared, grid3 = prepare_volume(volume, runtime.spacing_mm, runtime.model.input_multiple)
        tumours = find_tumours_3d(runtime.model, volume, prepared, grid3, runtime.device, config.limits)
        return tumours, lambda: source_labels_3d(tumours, grid3, volume.pixels.shape)
    grid = runtime.slice_grid(volume.pixels.shape[1], volume.pixels.shape[2], volume.spacing_mm[:2])
    prediction = predict_series(runtime.model, prepare_slices(volume.pixels, grid), grid, runtime.device)
    tumours = find_tumours(runtime.model, volume, prediction, config.limits)
    return tumours, lambda: source_labels(tumours, prediction, volume.pixels.shape)


def _fold(header) -> int | None:  # noqa: ANN001 - a pydicom Dataset
    """The benchmark fold `tumorsearch dicomize` records (Clinical Trial Time Point ID "fold-N"); None
    for every real study."""
    text = str(getattr(header, "ClinicalTrialTimePointID", "") or "")
    return int(text[5:]) if text.startswith("fold-") and text[5:].isdigit() else None
