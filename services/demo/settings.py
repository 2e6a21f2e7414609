"""What `tumorsearch demo` reads from the environment: nothing of its own. Read, not owned: the sections of the
programs `tumorsearch run` starts (to know where they answer and what the listener allows), the same variables
they read (docs/configuration.md). The data folder: TUMORSEARCH_DATA_DIR (shared/config/data.py)."""

from __future__ import annotations

from shared.config.data import DataSettings
from shared.config.programs import GatewaySection, ListenerSection, VectorHostSection


class DemoSettings(DataSettings):
    listener: ListenerSection = ListenerSection()
    gateway: GatewaySection = GatewaySection()
    vectorhost: VectorHostSection = VectorHostSection()
