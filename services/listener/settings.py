"""The listener's settings, built once at start from TUMORSEARCH_ variables (docs/configuration.md)."""

from shared.config import BrokerSettings, ProgramSettings
from shared.config.programs import ListenerSection


class ListenerSettings(ProgramSettings):
    broker: BrokerSettings = BrokerSettings()
    listener: ListenerSection = ListenerSection()
