"""Settings: section models shared by programs and the loader that fills them from an environment mapping."""

from shared.config.describe import SettingRow, describe_settings
from shared.config.environ import PREFIX, SettingsError, env_name, settings_from_environ
from shared.config.sections import BrokerSettings, LogSettings, ProgramSettings, Section, VectorStoreSettings

__all__ = [
    "PREFIX", "SettingsError", "env_name", "settings_from_environ", "SettingRow", "describe_settings",
    "Section", "ProgramSettings", "LogSettings", "BrokerSettings", "VectorStoreSettings",
]
