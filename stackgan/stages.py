"""The two StackGAN stages, each described by one object: which stored image it trains on and
at what size, its schedule fields, its batch size, and whether it refines Stage-I's image.
The input pipeline, the runner and the trainer job read a stage from here instead of
switching on its number."""

from __future__ import annotations

import dataclasses

from stackgan.config import DataConfig, TrainConfig
from stackgan.schemas import features


@dataclasses.dataclass(frozen=True)
class Stage:
    number: int  # 1 or 2, as in the paper and the components' names
    name: str  # "Stage-I"
    image_feature: str  # the stored image it trains on (features.IMAGE_LOW / IMAGE_HIGH)
    refines_stage1: bool  # takes the frozen Stage-I generator's image as its input

    def image_sizes(self, data: DataConfig) -> tuple[int, int]:
        """(stored size, training crop size) of its images."""
        if self.refines_stage1:
            return data.high_res_stored, data.high_res
        return data.low_res_stored, data.low_res

    def epochs(self, train: TrainConfig) -> int:
        return train.stage2_epochs if self.refines_stage1 else train.stage1_epochs

    def step_cap(self, train: TrainConfig) -> int:
        """Its step cap (0 = run the epochs): Stage-II's own `stage2_max_steps` when set."""
        if self.refines_stage1 and train.stage2_max_steps:
            return train.stage2_max_steps
        return train.max_steps

    def batch_size(self, train: TrainConfig) -> int:
        """Its batch size: Stage-II's own `stage2_batch_size` when set."""
        if self.refines_stage1 and train.stage2_batch_size:
            return train.stage2_batch_size
        return train.batch_size

    def g_learning_rate(self, train: TrainConfig) -> float:
        """Its generator's starting learning rate: Stage-II's own `stage2_learning_rate` when
        set."""
        if self.refines_stage1 and train.stage2_learning_rate:
            return train.stage2_learning_rate
        return train.learning_rate


STAGE1 = Stage(1, "Stage-I", features.IMAGE_LOW, refines_stage1=False)
STAGE2 = Stage(2, "Stage-II", features.IMAGE_HIGH, refines_stage1=True)
STAGES = {stage.number: stage for stage in (STAGE1, STAGE2)}


def get_stage(number: int) -> Stage:
    """The Stage numbered `number` (1 or 2)."""
    try:
        return STAGES[number]
    except (KeyError, TypeError):
        raise ValueError(f"stage must be 1 or 2, got {number!r}") from None
