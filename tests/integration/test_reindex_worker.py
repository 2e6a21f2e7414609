"""An upgrade that brings a new checkpoint, with real workers: studies indexed by the old model are handed to
the new one by `tumorsearch reindex`, land in the new version's collection, and the old collection (which a
pinned gateway still searches) keeps its points until the site drops it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.contracts.vectors import collection_name
from shared.model.checkpoint import CARD, SHIPPED
from support.servers import start_redis
from support.worker import TUMORSEARCH, worker_system
from test_worker_studies import CLEAR_GLIOMA, figshare_study, model_version  # noqa: I001 - same folder

pytestmark = pytest.mark.integration
OLD = "pisov2d-c64-previous000"
MENINGIOMA = 17  # fold 5, never trained on


def old_checkpoint(folder: Path) -> Path:
    """The shipped weights under another version: what a site ran before the upgrade, as far as the
    collections, statuses and the command can tell."""
    shutil.copytree(SHIPPED, folder)
    card = json.loads((folder / CARD).read_text())
    (folder / CARD).write_text(json.dumps({**card, "model_version": OLD}))
    return folder


def reindex(env: dict[str, str], out: Path) -> dict:
    done = subprocess.run([str(TUMORSEARCH), "reindex", "--json", str(out), "--no-progress"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_reindex_moves_the_archive_to_the_new_checkpoint(tmp_path, data_dir):
    with start_redis(tmp_path / "redis") as broker, worker_system(
            tmp_path / "system", broker.url, checkpoint=old_checkpoint(tmp_path / "old")) as system:
        studies = [figshare_study(data_dir, image, tmp_path / str(image))[0] for image in (CLEAR_GLIOMA, MENINGIOMA)]
        before = [system.process(files) for files in studies]
        assert [s.model_version for s in before] == [OLD, OLD] and all(s.state == "done" for s in before)
        system.worker.stop()
        system.env["TUMORSEARCH_WORKER__CHECKPOINT"] = str(SHIPPED)
        system.start_worker("worker-new")

        summary = reindex(system.env, tmp_path / "first.json")
        assert (summary["handed_over"], summary["current"], summary["model_version"]) == (2, 0, model_version())
        assert summary["previous_model_versions"] == {OLD: 2}
        after = [system.wait_status(s.study_instance_uid, handover=2) for s in before]
        assert all(s.state == "done" and s.model_version == model_version() and s.tumours >= 1 for s in after)
        new_points = system.store.retrieve(collection_name(model_version()), [p for s in after for p in s.point_ids])
        assert len(new_points) == sum(s.tumours for s in after)
        old_points = system.store.retrieve(collection_name(OLD), [p for s in before for p in s.point_ids])
        assert len(old_points) == sum(s.tumours for s in before)

        again = reindex(system.env, tmp_path / "again.json")
        assert (again["handed_over"], again["current"]) == (0, 2)
