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


# --- group / similar (pipeline/group.py) --------------------------------------------------------


@main.command("group")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="GROUPS.jsonl: one line per group of two or more rows.")
@pass_settings
def group_command(settings, input_path, out_path):
    """Group the initiatives in INPUT (JSONL/CSV) that carry the same idea."""
    from .group import group_file

    run = group_file(input_path, out_path, settings)
    for item in run.ingest.rejected:
        click.echo(item.message(str(input_path)), err=True)
    click.echo(run.summary())


@main.command("similar")
@click.argument("query_id", metavar="ID")
@click.option("--in", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL/CSV file that holds ID and the rows to compare with.")
@click.option("-k", "k", type=click.IntRange(min=1), default=None,
              help="How many neighbours (default: [group] neighbours).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_settings
def similar_command(settings, query_id, input_path, k, as_json):
    """The initiatives in --in most similar to the one with id ID."""
    import json

    from .group import similar_in_file

    result, neighbours = similar_in_file(input_path, query_id, k or settings.group.neighbours,
                                         settings)
    rows = {row.id: row for row in result.accepted}
    for rank, item in enumerate(neighbours, start=1):
        row = rows[item.id]
        if as_json:
            click.echo(json.dumps({"rank": rank, **item.to_dict(), "gemeente": row.gemeente,
                                   "naam": row.naam}, ensure_ascii=False))
        else:
            title = row.naam or row.omschrijving[:60]
            click.echo(f"{rank}. {item.id}  gelijkenis {item.similarity:.2f}  "
                       f"(score {item.score:+.2f})  {row.gemeente}: {title}")


__all__ = ["main", "pass_settings", "Settings"]
