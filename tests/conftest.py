"""Fixtures shared by every layer of tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# The shop on a real database (SQLite file or throwaway PostgreSQL) with our fake
# gateway, for every layer.
pytest_plugins = ["tests.pg", "tests.shop"]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def chromium_path() -> str:
    """Locate the system Chromium; its absence fails the browser tests."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "Chromium is required for the browser tests: apt-get install -y chromium "
        "(or set CHROMIUM to its path)",
        pytrace=False,
    )


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    """One headless system Chromium for the whole run."""
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser):  # type: ignore[no-untyped-def]
    """A fresh browser context and page for one test."""
    context = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(10_000)
    yield page
    await context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where browser tests leave screenshots (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
