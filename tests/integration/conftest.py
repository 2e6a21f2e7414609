"""Fixtures of the integration tests that more than one module uses."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from support.listener import Listener, start_listener


@pytest.fixture
def listener_factory(tmp_path: Path):
    with ExitStack() as stack:
        count = iter(range(100))

        def make(redis_url: str, **kwargs) -> Listener:
            name = kwargs.pop("name", f"listener-{next(count)}")
            return stack.enter_context(start_listener(tmp_path, redis_url, name=name, **kwargs))

        yield make
