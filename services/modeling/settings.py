"""Settings of the model commands (train, evaluate): where the data is and which device to use."""

from pathlib import Path

from pydantic import Field

from shared.config import ProgramSettings

_DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class ModelSettings(ProgramSettings):
    data_dir: Path = Field(_DEFAULT_DATA, description="Real MRI data (the figshare benchmark in "
                                                      "`figshare-cetumor/`); default: ../shared/data beside the "
                                                      "repository.")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda)$", description="Device of train/evaluate: `auto` "
                                                                           "picks CUDA when present.")

    @property
    def figshare_dir(self) -> Path:
        return self.data_dir / "figshare-cetumor"
