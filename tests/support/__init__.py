"""Test support: free ports, managed server processes, Redis/Orthanc servers and dcmtk clients.

Imported as `support` (pytest's default "prepend" import mode puts tests/ on sys.path via tests/conftest.py).
"""
