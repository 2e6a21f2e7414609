"""What `tumorsearch reindex` reads: the broker, and the worker's section for the checkpoint it runs (whose
version decides which studies are already current). Read, not owned: the same variables as the worker, so
the command runs where a worker runs, with its environment (docs/configuration.md)."""

from shared.config import BrokerSettings, ProgramSettings
from shared.config.programs import WorkerSection


class ReindexSettings(ProgramSettings):
    broker: BrokerSettings = BrokerSettings()
    worker: WorkerSection = WorkerSection()
