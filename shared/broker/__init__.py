"""The Celery broker: its embedded server for one machine, the Celery settings every program shares, and
the delivery cap that stops a poison study from looping forever. Measured and chosen in docs/broker.md.
"""

from shared.broker.celery_config import celery_config
from shared.broker.delivery import DeliveryCapExceeded, count_delivery, enforce_delivery_cap, forget_deliveries
from shared.broker.embedded import BrokerBinary, BrokerError, EmbeddedBroker, describe_binary, find_binary, free_port

__all__ = [
    "BrokerBinary", "BrokerError", "DeliveryCapExceeded", "EmbeddedBroker", "celery_config", "count_delivery",
    "describe_binary", "enforce_delivery_cap", "find_binary", "forget_deliveries", "free_port",
]
