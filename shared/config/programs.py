"""The sections of each program. They live here, not in the programs, because `tumorsearch run` reads
the same variables as the programs it starts (to know where they listen) and programs never import
each other. Each program composes its settings object from these in services/<program>/settings.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.config.sections import Section


class ListenerSection(Section):
    host: str = Field("127.0.0.1", description="Address the DICOM listener binds; `0.0.0.0` to accept the PACS "
                                               "from the network.")
    port: int = Field(11112, ge=1, le=65535, description="DICOM port (11112 is the registered DICOM port).")
    ae_title: str = Field("TUMORSEARCH", min_length=1, max_length=16, pattern=r"^[ -~]*[!-~][ -~]*$",
                          description="Called AE title the listener answers to.")
    max_associations: int = Field(16, ge=1, le=1000, description="Concurrent associations accepted.")
    network_timeout_s: float = Field(60.0, gt=0, description="Seconds of silence on a socket before it is closed.")
    acse_timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for association messages.")
    dimse_timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for DIMSE messages.")


class GatewaySection(Section):
    host: str = Field("127.0.0.1", description="Address the HTTP gateway binds.")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port of the gateway.")
    threads: int = Field(8, ge=1, le=256, description="Request threads of the WSGI server.")


class WorkerSection(Section):
    concurrency: int = Field(1, ge=1, le=64, description="Studies processed at once by one worker process "
                                                         "(one per GPU is the rule).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto`: CUDA when present, else CPU.")
    max_deliveries: int = Field(3, ge=1, le=100, description="Deliveries of one task before it is rejected "
                                                             "as poison (a study that kills the worker).")


class VectorHostSection(Section):
    host: str = Field("127.0.0.1", description="Address the embedded vector store binds; keep it on loopback.")
    port: int = Field(6333, ge=1, le=65535, description="Port of the embedded vector store (Qdrant's REST port).")
