"""What every `pipeline` command shares: settings read once, user errors as clean messages, safe
echo, and the --db option (used by `pipeline.cli.main` and the command modules beside it)."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from pipeline.core.config import load_settings
from pipeline.core.errors import PipelineError, user_message
from pipeline.core.text import terminal_safe


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
            raise click.ClickException(terminal_safe(user_message(exc), keep_newlines=True)) from exc
        except OSError as exc:  # disk full, read-only folder: a message, not a traceback
            raise click.ClickException(
                f"[OS] {exc.strerror or exc}: {exc.filename or ''} (schijf vol of alleen-lezen? / "
                "disk full or read-only?)") from exc

    return wrapper


def _echo(message="", **kwargs) -> None:
    """click.echo for anything that may hold a sender's text: escape codes never reach the terminal."""
    click.echo(terminal_safe(str(message), keep_newlines=True), **kwargs)


# Every command that touches the catalogue takes the same option.
db_option = click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
                         help="Catalogue file (default: [store] path).")


