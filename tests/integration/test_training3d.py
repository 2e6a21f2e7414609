"""The 3D path on the three real volumes (two TCGA-GBM NRRD, one BraTS-MET NIfTI) at a coarse 5 mm grid:
the loss falls, the checkpoint folder is a valid dims-3 card, a missing type adds nothing, the run
resumes, and evaluation gives a Dice and an embedding per volume. Proves the path, not accuracy."""

import json

import numpy as np
import pytest
import torch

from shared.model import checkpoint
from shared.model.tasks import MISSING
from shared.model.training3d import Train3DConfig, batch_loss, build_model, evaluate_volumes, load, make_batch, train3d
from shared.model.volumes import load_volumes

pytestmark = pytest.mark.integration

SPACING, SHAPE = 5.0, (32, 48, 48)  # coarse, so the whole file runs in well under a minute


@pytest.fixture(scope="module")
def volumes(data_dir, tmp_path_factory):
    root = data_dir / "volumes"
    tcga, brats = root / "tcga-gbm-t1c", root / "brats-met-00110"
    csv = tmp_path_factory.mktemp("labels") / "labels.csv"
    # brain2 has no type: the missing-label rule must keep it out of the type loss.
    csv.write_text("volume_id,image,mask,fold,type\n"
                   f"brain1,{tcga / 'brain1_image.nrrd'},{tcga / 'brain1_label.nrrd'},1,glioma\n"
                   f"brain2,{tcga / 'brain2_image.nrrd'},{tcga / 'brain2_label.nrrd'},1,\n"
                   f"brats-met-00110,{brats / 't1c.nii.gz'},{brats / 't1c_pseudo_seg.nii.gz'},2,metastasis\n")
    return load_volumes(csv, SPACING, SHAPE)


def test_real_volumes_load_on_one_grid_with_their_lesions(volumes):
    assert [v.volume_id for v in volumes] == ["brain1", "brain2", "brats-met-00110"]
    for volume in volumes:
        assert volume.image.shape == volume.mask.shape == SHAPE
        assert volume.mask.any(), f"{volume.volume_id}: the lesion was lost in resampling or cropping"
        assert all(abs(s - SPACING) < 0.3 for s in volume.spacing_mm)
    assert volumes[0].source_spacing_mm == pytest.approx((6.5, 0.78125, 0.78125))


def test_a_missing_type_adds_nothing_to_the_loss(volumes):
    torch.manual_seed(0)
    model = build_model(Train3DConfig(channels=8, blocks=1, shape=SHAPE))
    batch = make_batch([volumes[1]])
    assert int(batch["labels"]["type"][0]) == MISSING and int(batch["labels"]["size"][0]) == 0  # small
    _, parts = batch_loss(model, batch)
    assert parts["type"] == 0.0 and parts["segmentation"] > 0 and parts["size"] > 0


def test_loss_falls_and_the_checkpoint_is_a_dims_3_card(volumes, tmp_path):
    config = Train3DConfig(channels=8, blocks=1, epochs=5, lr=5e-3, shape=SHAPE, spacing_mm=SPACING)
    card = train3d(config, volumes, tmp_path, "test")
    losses = [h["loss"] for h in card["history"]]
    assert losses[-1] < losses[0] * 0.8, losses

    on_disk = json.loads((tmp_path / checkpoint.CARD).read_text())
    assert on_disk["architecture"]["dims"] == 3 and on_disk["architecture"]["input_shape"] == list(SHAPE)
    assert on_disk["architecture"]["spacing_mm"] == SPACING and on_disk["complete"]
    assert on_disk["tasks"]["type"][-1] == "metastasis" and len(on_disk["history"]) == 5
    assert on_disk["model_version"].startswith("pisov3d-c8-")

    model, _ = load(tmp_path)
    results = evaluate_volumes(model, volumes)
    assert [r["box_source"] for r in results] == ["mask"] * 3
    for result in results:
        assert 0.0 <= result["dice"] <= 1.0
        assert result["embedding"].shape == (8,) and np.isfinite(result["embedding"]).all()


def _stop_after(history, epoch):
    if history["epoch"] == epoch:
        raise KeyboardInterrupt


def test_an_interrupted_run_resumes_from_its_last_epoch(volumes, tmp_path):
    config = Train3DConfig(channels=8, blocks=1, epochs=3, shape=SHAPE, spacing_mm=SPACING)
    with pytest.raises(KeyboardInterrupt):
        train3d(config, volumes, tmp_path, "test", on_epoch=lambda h: _stop_after(h, 2))
    card = train3d(config, volumes, tmp_path, "test")
    assert [h["epoch"] for h in card["history"]] == [1, 2, 3] and card["complete"]
    with pytest.raises(ValueError, match="holds a run with another configuration"):
        train3d(Train3DConfig(channels=8, blocks=1, epochs=4, shape=SHAPE, spacing_mm=SPACING),
                volumes, tmp_path, "test")
