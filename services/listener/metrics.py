"""Prometheus metrics of the listener, in a registry of its own (tests run several listeners in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

PREFIX = "tumorsearch_listener_"


class ListenerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.instances_received = Counter(PREFIX + "instances_received", "Instances stored and acknowledged",
                                          registry=self.registry)
        self.instances_rejected = Counter(PREFIX + "instances_rejected", "C-STORE requests answered with a "
                                          "failure status, by reason", ["reason"], registry=self.registry)
        self.bytes_received = Counter(PREFIX + "bytes_received", "Bytes of stored datasets",
                                      registry=self.registry)
        self.associations = Counter(PREFIX + "associations", "Connections by outcome (released, aborted, "
                                    "rejected, refused, closed)", ["result"], registry=self.registry)
        self.association_seconds = Histogram(PREFIX + "association_seconds", "Duration of a connection",
                                             buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800),
                                             registry=self.registry)
        self.studies_handed_over = Counter(PREFIX + "studies_handed_over", "Hand-over tasks sent to the worker",
                                           registry=self.registry)
        self.handover_failures = Counter(PREFIX + "handover_failures", "Hand-overs the broker did not accept "
                                         "(kept in the outbox and retried)", registry=self.registry)

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics on host:port from a daemon thread (port 0 means off: not called)."""
        start_http_server(port, addr=host, registry=self.registry)
