"""Prometheus metrics of the gateway (/metrics): requests, latency, results per query. Labels are the
route template (never a UID) and the status code, so the series count stays bounded."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def install_metrics(app: Flask) -> None:
    registry = CollectorRegistry()
    requests = Counter("tumorsearch_gateway_requests_total", "HTTP requests", ["route", "method", "status"],
                       registry=registry)
    latency = Histogram("tumorsearch_gateway_request_seconds", "Time to answer", ["route"],
                        buckets=LATENCY_BUCKETS, registry=registry)
    results = Histogram("tumorsearch_gateway_results_per_query", "Results returned by a similar-tumour query",
                        buckets=(0, 1, 5, 10, 20, 50, 100, 1000), registry=registry)

    @app.before_request
    def _start() -> None:
        g.tumorsearch_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        requests.labels(route, request.method, str(response.status_code)).inc()
        latency.labels(route).observe(time.perf_counter() - g.get("tumorsearch_started", time.perf_counter()))
        if "tumorsearch_results" in g:
            results.observe(len(g.tumorsearch_results))
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
