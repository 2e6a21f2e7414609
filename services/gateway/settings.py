"""The gateway's settings, built once at start from TUMORSEARCH_ variables (docs/configuration.md)."""

from shared.config import BrokerSettings, ProgramSettings, VectorStoreSettings
from shared.config.programs import GatewaySection


class GatewaySettings(ProgramSettings):
    broker: BrokerSettings = BrokerSettings()
    vector_store: VectorStoreSettings = VectorStoreSettings()
    gateway: GatewaySection = GatewaySection()
