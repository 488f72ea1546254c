"""The `pipeline` command: a thin click layer over the stage functions.

Each command builds objects from the settings, calls library functions, and turns a
`PipelineError` into a clean message (exit code 1) at this edge only.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from .config import Settings, load_settings
from .errors import PipelineError


def pass_settings(command):
    """Give a command the `Settings` read once from --config; turn user errors into messages."""

    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx, *args, **kwargs):
        try:
            settings = ctx.obj.get("settings") if ctx.obj else None
            if settings is None:
                settings = load_settings(ctx.obj.get("config_path") if ctx.obj else None)
                ctx.ensure_object(dict)["settings"] = settings
            return command(settings, *args, **kwargs)
        except PipelineError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PIPELINE_CONFIG",
    help="Settings file (default: configs/pipeline.toml).",
)
@click.version_option(package_name="pipeline")
@click.pass_context
def main(ctx, config_path):
    """Classify, score, group, review and search municipal initiatives."""
    ctx.ensure_object(dict)["config_path"] = config_path


__all__ = ["main", "pass_settings", "Settings"]
