"""Settings of `tumorsearch vectorstore`, the embedded vector store served to one machine's programs."""

from shared.config import ProgramSettings
from shared.config.programs import VectorHostSection


class VectorHostSettings(ProgramSettings):
    vectorhost: VectorHostSection = VectorHostSection()
