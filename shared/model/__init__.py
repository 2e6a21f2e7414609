"""The multitask tumour model (Pisov et al. 2018): network, tasks, training, retrieval evaluation.

Imports torch: only the worker and the model commands import this package, never the listener or the
gateway (tests/unit/test_service_boundaries.py).
"""
