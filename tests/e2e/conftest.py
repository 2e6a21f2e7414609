"""Fixtures of the page tests: one indexed system per test module (building it runs the worker pipeline
nine times, a few seconds), stopped when the module ends so that later tests find no stray servers (the
demo tests check for none); and a fresh headless Chromium per test that drives the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.browser import CHROMIUM, Browser
from support.page_gateway import Gateway, indexed_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, data_dir) -> Iterator[Gateway]:
    if not CHROMIUM.is_file():
        pytest.fail(f"expected Debian's chromium at {CHROMIUM}; install it with apt-get install chromium",
                    pytrace=False)
    with indexed_gateway(tmp_path_factory.mktemp("gateway-page"), data_dir) as index:
        yield index


@pytest.fixture
def browser(tmp_path) -> Iterator[Browser]:
    driven = Browser(str(tmp_path / "chromium-profile"))
    try:
        yield driven
    finally:
        driven.close()
