"""Shared fixtures: the real settings, pointed at a temporary embedding cache, and tiny corpora."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from pipeline.core.config import load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CORPUS = PROJECT_ROOT / "data" / "corpus" / "initiatives.jsonl"


@pytest.fixture(scope="session")
def settings():
    """The project's settings; the embedding cache is the project's own (.cache/), which is safe to
    share: it is keyed by encoder id and text hash."""
    return load_settings()


@pytest.fixture(scope="session")
def corpus_rows():
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
            handle.write("\n")
    return path


@pytest.fixture
def tmp_settings(settings, tmp_path):
    """Settings whose models folder is a temporary one (for tests that train)."""
    paths = dataclasses.replace(settings.paths, models=tmp_path / "models")
    return dataclasses.replace(settings, paths=paths)


CHROMIUM = Path("/usr/bin/chromium")


def pytest_collection_modifyitems(config, items):
    """Browser tests skip on a developer machine without Chromium, but in CI (CI set) a missing
    Chromium is an error: a CI that silently skips them would pass untested."""
    if CHROMIUM.exists():
        return
    browser_items = [item for item in items if item.get_closest_marker("browser")
                     or "chromium" in item.name]
    if browser_items and os.environ.get("CI"):
        raise pytest.UsageError(
            f"CI: {len(browser_items)} browser test(s) selected but {CHROMIUM} is missing "
            "(run `make browser`, or deselect them with -m 'not browser')")
