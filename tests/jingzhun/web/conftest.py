"""The workbench's fixtures: a served county on each backend, and a real browser."""

from __future__ import annotations

import pytest

from workbench import browser, serve


@pytest.fixture
def workbench(warehouse_url, county, frames):
    bench = serve(warehouse_url, frames, county["landing"])
    try:
        yield bench
    finally:
        bench.stop()


@pytest.fixture
def driver(tmp_path):
    chrome = browser(tmp_path / "profile")
    try:
        yield chrome
    finally:
        chrome.quit()
