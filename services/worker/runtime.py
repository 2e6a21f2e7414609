"""The model of one worker process: loaded once (the first task, or at process start), kept for every
task after. CUDA when available (or required by the settings), else the CPU; bf16 autocast where the
hardware runs it natively, fp32 where it would be emulated (or as the settings force; shared/model/device.py)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from shared.model import checkpoint
from shared.model.device import pick_device, precision_name, reduced_precision
from shared.model.network import PisovNet
from shared.model.series_inference import MIN_FIELD_OF_VIEW_MM, ModelGrid, model_grid

log = logging.getLogger("tumorsearch.worker")


@dataclass(frozen=True)
class Runtime:
    model: PisovNet
    card: dict
    device: torch.device

    @property
    def bf16(self) -> bool | None:
        """Autocast for the network, as load_runtime set it on the model (inference reads it there)."""
        return self.model.bf16

    @property
    def model_version(self) -> str:
        return str(self.card["model_version"])

    @property
    def spacing_mm(self) -> float:
        return float(self.card["architecture"]["spacing_mm"])

    def slice_grid(self, rows: int, cols: int, pixel_spacing_mm: tuple[float, float]) -> ModelGrid:
        """The 2D model's grid for slices of rows x cols: its spacing, padded to its input multiple and to
        the smallest field of view it is shown."""
        return model_grid(rows, cols, pixel_spacing_mm, self.spacing_mm, self.model.input_multiple,
                          MIN_FIELD_OF_VIEW_MM)

    @property
    def dims(self) -> int:
        return int(self.card["architecture"].get("dims", 2))

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(self.card["tasks"]["type"])


_loaded: dict[tuple[str, str, str], Runtime] = {}   # (folder, device choice, precision)
_lock = threading.Lock()


def load_runtime(folder: Path, device_choice: str = "auto", precision: str = "auto") -> Runtime:
    key = (str(Path(folder).resolve()), device_choice, precision)
    with _lock:
        if key not in _loaded:
            device = pick_device(device_choice)
            model, card = _load(Path(folder), device)
            # The weights stay as loaded (contiguous): the inputs are channels_last, exactly as in `tumorsearch
            # evaluate`; converting the weights too picks other bf16 kernels, and the embeddings then differ
            # from the offline ones in the third decimal (found by `bench system`).
            model.bf16 = reduced_precision(device, precision)  # every forward pass of the worker reads it
            _loaded[key] = Runtime(model, card, device)
            log.info("model loaded", extra={"model_version": card["model_version"], "device": device.type,
                                            "precision": precision_name(device, model.bf16)})
        return _loaded[key]


def _load(folder: Path, device: torch.device):  # noqa: ANN202 - (PisovNet, card)
    """A 2D checkpoint runs slice by slice; a 3D one (training3d's card, dims 3) on the whole volume."""
    import json

    dims = json.loads((folder / checkpoint.CARD).read_text()).get("architecture", {}).get("dims", 2)
    if dims == 3:
        from shared.model import training3d

        model, card = training3d.load(folder)
        return model.to(device), card
    return checkpoint.load(folder, device)
