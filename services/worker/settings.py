"""The worker's settings, built once at start from TUMORSEARCH_ variables (docs/configuration.md)."""

from shared.config import BrokerSettings, ProgramSettings, VectorStoreSettings
from shared.config.programs import WorkerSection


class WorkerSettings(ProgramSettings):
    broker: BrokerSettings = BrokerSettings()
    vector_store: VectorStoreSettings = VectorStoreSettings()
    worker: WorkerSection = WorkerSection()
