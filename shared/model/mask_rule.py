"""How a probability map becomes a tumour mask: the threshold, and whether the probabilities are the
average of the image and its left-right mirror (flip averaging, a cheap test-time augmentation).

The rule belongs to a checkpoint: it is stored in the model card under "mask_rule", chosen on a fold
the choosing model never saw (`tumorsearch calibrate`), and used alike by `tumorsearch evaluate` and
the worker. A card without it uses the plain rule (0.5, no flip), which every checkpoint before the
rule existed was evaluated with."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class MaskRule:
    threshold: float = 0.5
    flip_average: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError(f"mask threshold: expected a probability in (0, 1), found {self.threshold}")

    @classmethod
    def from_card(cls, card: dict) -> "MaskRule":
        stored = card.get("mask_rule") or {}
        return cls(threshold=float(stored.get("threshold", 0.5)),
                   flip_average=bool(stored.get("flip_average", False)))

    def to_json(self) -> dict:
        return asdict(self)
