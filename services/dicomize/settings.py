"""Settings of `tumorsearch dicomize`: where the real MRI data is (only read when --figshare is not given)."""

from pathlib import Path

from pydantic import Field

from shared.config import ProgramSettings

# ../shared/data beside the repository, where the project keeps its real MRI data.
_BESIDE_REPOSITORY = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class DicomizeSettings(ProgramSettings):
    data_dir: Path | None = Field(None, description="Real MRI data (the figshare benchmark in `figshare-cetumor/`); "
                                                    "unset: ../shared/data beside the repository.")

    @property
    def figshare_dir(self) -> Path:
        return (self.data_dir or _BESIDE_REPOSITORY) / "figshare-cetumor"
