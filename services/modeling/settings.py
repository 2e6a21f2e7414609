"""Settings of the model commands (train, evaluate, validate, project): where the data is, which device."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from shared.config import ProgramSettings

# ../shared/data beside the repository, where the project keeps its real MRI data.
_BESIDE_REPOSITORY = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class ModelSettings(ProgramSettings):
    data_dir: Path | None = Field(None, description="Real MRI data (the figshare benchmark in `figshare-cetumor/`); "
                                                    "unset: ../shared/data beside the repository.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Device of the model commands: `auto` "
                                                                       "picks CUDA when present.")

    @property
    def figshare_dir(self) -> Path:
        return (self.data_dir or _BESIDE_REPOSITORY) / "figshare-cetumor"
