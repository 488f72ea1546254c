"""The error catalogue: every user-facing error class lives in pipeline/core/errors.py with a
stable, unique code, and the CLI shows that code with the message."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

from click.testing import CliRunner

import pipeline
from pipeline.cli.main import main as cli
from pipeline.core import errors


def _package_modules():
    for info in pkgutil.walk_packages(pipeline.__path__, prefix="pipeline."):
        if info.name.endswith("__main__"):
            continue  # importing it runs the CLI
        yield importlib.import_module(info.name)


def test_every_pipeline_error_is_defined_in_the_catalogue():
    elsewhere = sorted({
        f"{obj.__module__}.{name}"
        for module in _package_modules()
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, errors.PipelineError)
        and obj.__module__ != "pipeline.core.errors"
    })
    assert not elsewhere, f"define these in pipeline/core/errors.py: {elsewhere}"


def test_codes_are_unique_and_listed():
    classes = [obj for obj in vars(errors).values()
               if inspect.isclass(obj) and issubclass(obj, errors.PipelineError)]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)), codes
    assert set(errors.ERROR_CODES.values()) == set(classes)


def test_the_cli_shows_the_code(tmp_path):
    bad = tmp_path / "pipeline.toml"
    bad.write_text("[paths\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(bad), "search", "laptops"])
    assert result.exit_code == 1
    assert "[CONFIG]" in result.output and str(bad) in result.output
