"""The worker's settings, built once at start from TUMORSEARCH_ variables (docs/configuration.md)."""

from pydantic import model_validator

from shared.config import BrokerSettings, ProgramSettings, VectorStoreSettings
from shared.config.programs import WorkerSection


class WorkerSettings(ProgramSettings):
    broker: BrokerSettings = BrokerSettings()
    vector_store: VectorStoreSettings = VectorStoreSettings()
    worker: WorkerSection = WorkerSection()

    @model_validator(mode="after")
    def _limit_below_visibility(self) -> "WorkerSettings":
        # A study still running when its message becomes visible again would be processed twice; the hard
        # limit is the soft one + 30 s.
        if self.worker.soft_time_limit_s + 30 >= self.broker.visibility_timeout_s:
            raise ValueError(f"worker.soft_time_limit_s: expected more than 30 s below broker.visibility_timeout_s "
                             f"({self.broker.visibility_timeout_s}), found {self.worker.soft_time_limit_s}")
        return self
