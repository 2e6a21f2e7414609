"""Everything that defines a training run; stored in the model card so a run can be reproduced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from shared.model.tasks import ALL_TASKS, CLASSIFICATION_TASKS, TUMOR_TYPES


@dataclass(frozen=True)
class TrainConfig:
    tasks: tuple[str, ...] = ALL_TASKS
    channels: int = 64
    blocks: int = 4
    seg_channels: int = 16          # width of the segmentation head's ResBlock on the input grid
    mid_level: bool = False         # down x4 as two stride-2 steps; the mask head also reads stride 2
    context: bool = False           # the mask head also reads the coarse map pooled to 1, 2, 4 cells per side
    mask_levels: int = 0            # stride-2 levels of a small U-Net on the coarse map, for the mask only
    symmetry: bool = False          # a second input channel: the image mirrored about its content's centre
    deep_supervision: float = 0.0   # weight of a mask loss on each mask level's own coarse logit; 0 = off
    size: int = 128                 # training grid (pixels); the spacing follows from the source grid
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    metric_weight: float = 0.5      # supervised contrastive on tumour type; 0 turns it off
    metric_memory: int = 0          # embeddings of earlier batches the metric term also compares with; 0 = none
    projection: int = 0             # learned linear projection of the RoiPool vector; 0 = none
    augment: bool = True
    bias_field: float = 0.0         # smooth intensity shading in augmentation (peak log-gain); 0 = off
    noise: float = 0.0              # Gaussian noise in augmentation (largest sd); 0 = off
    scale: float = 0.15             # augmentation zoom range: 1 ± scale
    blur: float = 0.0               # largest Gaussian blur sd (pixels), 1 image in 4 blurred; 0 = off
    low_res: float = 0.0            # smallest down-and-up-sampling factor, 1 image in 4 shown so; 0 = off
    negatives: float = 0.0          # share of each batch replaced by anatomy-free images (empty mask)
    healthy_mirrors: float = 0.0    # share of each batch made tumour-free by mirroring the healthy half
    reframe: float = 0.0            # share of each batch shown as a smaller field of view on a padded grid
    tumour_paste: float = 0.0       # share of each batch given another slice's tumour in a mirrored healthy brain
    seg_weight: float = 1.0         # weight of the mask loss against the task losses
    weight_average: float = 0.0     # decay of the moving average of the weights that is shipped; 0 = last step
    mask_type_weights: tuple[float, ...] = ()  # mask-loss weight per tumour type (TUMOR_TYPES order); () = all 1
    seed: int = 0
    test_fold: int = 5
    train_folds: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.size % 4:
            raise ValueError(f"size: expected a multiple of 4 (the backbone's stride), found {self.size}")
        if self.test_fold not in range(0, 6):
            raise ValueError(f"test fold: expected 1..5 (0 = train on all folds), found {self.test_fold}")
        if self.test_fold in self.train_folds or not set(self.train_folds) <= set(range(1, 6)):
            raise ValueError(f"train folds: expected folds 1..5 without the test fold {self.test_fold}, "
                             f"found {list(self.train_folds)}")
        if self.deep_supervision and not (self.mask_levels and self.deep_supervision > 0):
            raise ValueError(f"deep supervision: expected a positive weight with --mask-levels, found "
                             f"{self.deep_supervision} with {self.mask_levels} mask levels")
        if self.metric_memory < 0 or (self.metric_memory and not self.metric_weight):
            raise ValueError(f"metric memory: expected 0, or a positive size with a metric weight, found "
                             f"{self.metric_memory} with metric weight {self.metric_weight}")
        if not 0 <= self.mask_levels <= 3:
            raise ValueError(f"mask levels: expected 0..3 stride-2 levels below the coarse map, found {self.mask_levels}")
        if self.mask_type_weights and (len(self.mask_type_weights) != len(TUMOR_TYPES)
                                       or min(self.mask_type_weights) <= 0):
            raise ValueError(f"mask type weights: expected {len(TUMOR_TYPES)} positive weights "
                             f"({', '.join(TUMOR_TYPES)}), found {list(self.mask_type_weights)}")
        if not 0 <= self.negatives < 0.5:
            raise ValueError(f"negatives: expected a share of the batch in [0, 0.5), found {self.negatives}")
        if not 0 <= self.scale < 0.5:
            raise ValueError(f"scale: expected a zoom range in [0, 0.5) (1 ± scale), found {self.scale}")
        if not 0 <= self.blur <= 3:
            raise ValueError(f"blur: expected a largest sd in [0, 3] pixels (0 = off), found {self.blur}")
        if not (self.low_res == 0 or 0.25 <= self.low_res < 1):
            raise ValueError(f"low res: expected 0 (off) or a smallest factor in [0.25, 1), found {self.low_res}")
        if not 0 <= self.tumour_paste <= 0.5:
            raise ValueError(f"tumour paste: expected a share of the batch in [0, 0.5], found {self.tumour_paste}")
        if not 0 <= self.reframe <= 1:
            raise ValueError(f"reframe: expected a share of the batch in [0, 1], found {self.reframe}")
        if not (self.weight_average == 0 or 0.9 <= self.weight_average < 1):
            raise ValueError(f"weight average: expected 0 (off) or a decay in [0.9, 1), found {self.weight_average}")
        if not 0 <= self.healthy_mirrors or self.negatives + self.healthy_mirrors >= 0.5:
            raise ValueError(f"healthy mirrors: expected a share of the batch that leaves, with the negatives "
                             f"({self.negatives}), over half of it with tumours; found {self.healthy_mirrors}")

    @property
    def folds(self) -> tuple[int, ...]:
        return self.train_folds or tuple(f for f in range(1, 6) if f != self.test_fold)

    @property
    def classification_tasks(self) -> dict[str, int]:
        return {t: len(CLASSIFICATION_TASKS[t].classes) for t in self.tasks if t in CLASSIFICATION_TASKS}

    def to_json(self) -> dict:
        """Plain JSON types (lists, not tuples), so a card read back compares equal."""
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        data["mask_type_weights"] = list(self.mask_type_weights)
        data["train_folds"] = list(self.folds)
        return data

    def same_run(self, other: "TrainConfig") -> bool:
        """Equal as training runs: the folds compared as resolved (() = every fold but the test fold)."""
        return self.to_json() == other.to_json()

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        data = dict(data)
        data["tasks"] = tuple(data["tasks"])
        data["train_folds"] = tuple(data.get("train_folds", ()))
        data["mask_type_weights"] = tuple(data.get("mask_type_weights", ()))
        # Cards written before a field existed ran with its default (the field's "off" value).
        return cls(**data)
