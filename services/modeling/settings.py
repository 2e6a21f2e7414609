"""Settings of the model commands (train, evaluate, validate, project): where the data is, which device."""

from typing import Literal

from pydantic import Field

from shared.config.data import DataSettings


class ModelSettings(DataSettings):
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Device of the model commands: `auto` "
                                                                       "picks CUDA when present.")
