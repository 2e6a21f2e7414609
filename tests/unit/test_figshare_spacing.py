"""The figshare loader puts every image at the model's physical spacing, as the worker does a slice."""

import numpy as np

from shared.model.figshare import at_model_spacing
from shared.model.preprocess import normalize_image, resize_to


def _image_and_mask(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (n, n)).astype(np.uint8)
    mask = np.zeros((n, n), bool)
    mask[n // 4:n // 2, n // 4:n // 2] = True
    return image, mask


def test_standard_spacing_is_a_plain_resize():
    image, mask = _image_and_mask(256)
    out, out_mask = at_model_spacing(image, mask, 0.98, 1.96, 128)
    assert np.array_equal(out, normalize_image(resize_to(image, (128, 128))))
    assert out_mask.sum() == 32 * 32


def test_half_spacing_is_centred_at_half_size_on_background():
    image, mask = _image_and_mask(256)
    out, out_mask = at_model_spacing(image, mask, 0.49, 1.96, 128)
    assert out.shape == (128, 128) and out_mask.shape == (128, 128)
    assert np.array_equal(out[32:96, 32:96], normalize_image(resize_to(image, (64, 64))))
    frame = np.ones((128, 128), bool)
    frame[32:96, 32:96] = False
    assert np.all(out[frame] == -1.0) and not out_mask[frame].any()
    # the tumour keeps its physical size: a quarter of the field of view on each side, now 16 px
    assert out_mask.sum() == 16 * 16


def test_larger_field_of_view_is_centre_cropped():
    image, mask = _image_and_mask(256)
    out, out_mask = at_model_spacing(image, mask, 1.96, 1.96, 128)
    assert np.array_equal(out, normalize_image(image)[64:192, 64:192])
    assert out_mask.sum() == 64 * 64
