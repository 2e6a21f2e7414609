"""Contracts between programs: task names and messages, the study storage layout, the vector-store schema.

Programs never import each other; they agree on what is written here. docs/architecture.md explains each.
"""
