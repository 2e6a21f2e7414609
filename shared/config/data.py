"""Where the real MRI data is, for every command that reads it (model commands, dicomize, demo, benches):
one setting, `TUMORSEARCH_DATA_DIR`, default `../shared/data` beside the repository."""

from pathlib import Path

from pydantic import Field

from shared.config.sections import ProgramSettings

# ../shared/data beside the repository, where the project keeps its real MRI data.
BESIDE_REPOSITORY = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class DataSettings(ProgramSettings):
    data_dir: Path | None = Field(None, description="Real MRI data (the figshare benchmark in `figshare-cetumor/`); "
                                                    "unset: ../shared/data beside the repository.")

    @property
    def root(self) -> Path:
        return self.data_dir or BESIDE_REPOSITORY

    @property
    def figshare_dir(self) -> Path:
        return self.root / "figshare-cetumor"
