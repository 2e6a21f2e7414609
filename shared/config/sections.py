"""Settings sections more than one program reads. Each program composes the ones it needs.

Defaults are for one machine (`make run`); deployments override them through the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Section(BaseModel):
    # A misspelt key inside a section is an error at start, never a silent default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level written to standard error.")
    format: Literal["json", "text"] = Field(
        "json", description="`json`: one JSON object per line (for log collectors); `text`: for a terminal.")


class BrokerSettings(Section):
    url: str = Field(
        "redis://127.0.0.1:6379/0",
        pattern=r"^(redis|rediss)://",
        description="Redis URL of the Celery broker and of the listener's shared study state. "
                    "`tumorsearch run` sets it to the broker it starts.")
    visibility_timeout_s: int = Field(
        3600, ge=60,
        description="Seconds before a task taken by a worker that died is handed to another worker; "
                    "longer than the slowest study.")


class VectorStoreSettings(Section):
    url: str = Field(
        "http://127.0.0.1:6333",
        pattern=r"^https?://",
        description="Qdrant REST URL: a Qdrant server in production, or the embedded store that "
                    "`tumorsearch vectorstore` serves on one machine.")
    api_key: SecretStr | None = Field(None, description="Qdrant API key, if the server requires one.")
    timeout_s: float = Field(10.0, gt=0, description="Seconds one vector store request may take.")


class ProgramSettings(BaseModel):
    """What every program has: the data folder and logging. Programs add their own sections."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(Path("var"), description="Folder holding all data of one installation (studies, outbox, "
                                                "embedded broker and vector store).")
    log: LogSettings = LogSettings()
