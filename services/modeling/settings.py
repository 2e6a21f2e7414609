"""Settings of the model commands (train, evaluate, validate, project): where the data is, which device."""

from typing import Literal

from pydantic import Field

from shared.config.data import DataSettings


class ModelSettings(DataSettings):
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Device of the model commands: `auto` "
                                                                       "picks CUDA when present.")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="Arithmetic of the network in the model commands: `auto` = fp16 on CUDA, bf16 on a "
                            "CPU that computes it natively, else fp32; `bf16` / `fp32` force it (e.g. to "
                            "reproduce figures measured on another kind of CPU).")
