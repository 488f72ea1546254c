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



# --- search / report (pipeline/search.py, pipeline/report.py) ---------------------------------


def _echo_hit(rank: int, hit, taxonomy, reasons_shown: int) -> None:
    r = hit.record
    title = r.get("naam") or (r.get("omschrijving") or "")[:70]
    click.echo(f"{rank}. {r['id']}  score {hit.score:.3f}  {r.get('gemeente')}: {title}")
    themes = ", ".join(taxonomy.name("themes", t) for t in r.get("themes") or ()) or "-"
    groups = ", ".join(taxonomy.name("doelgroepen", d) for d in r.get("doelgroepen") or ()) or "-"
    kind = {"initiative": "initiatief", "signal": "signaal"}.get(r.get("kind"), "-")
    click.echo(f"   thema's: {themes} | doelgroepen: {groups} | soort: {kind}")
    if r.get("replicability"):
        reasons = "; ".join(x["reden"] for x in (r.get("reasons") or [])[:reasons_shown])
        click.echo(f"   overdraagbaarheid {r['replicability']}/5" + (f": {reasons}" if reasons else ""))
    if r.get("group_gemeenten"):
        click.echo(f"   ook in {', '.join(r['group_gemeenten'])}")


@main.command("search")
@click.argument("query", required=False, default="")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Catalogue file (default: [store] path).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Most hits to show (default: [search] limit).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit and line (id, score, ...).")
@click.option("--thema", "themes", multiple=True, help="Theme id or Dutch name; repeat for OR.")
@click.option("--doelgroep", "doelgroepen", multiple=True, help="Target group id or Dutch name; repeat for OR.")
@click.option("--gemeente", "gemeenten", multiple=True, help="Municipality; repeat for OR.")
@click.option("--soort", "kind", default=None, help="initiatief or signaal.")
@click.option("--min-score", "min_score", type=click.IntRange(1, 5), default=None,
              help="Minimum replicability (1-5).")
@pass_settings
def search_command(settings, query, db_path, limit, as_json, themes, doelgroepen, gemeenten, kind,
                   min_score):
    """Search the catalogue for QUERY (Dutch free text), by meaning and words together.

    Without QUERY, lists the rows that match the filters, most replicable first.
    """
    import json

    from .config import load_taxonomy
    from .search import SearchFilters, resolve_kind, resolve_label, search_catalogue

    taxonomy = load_taxonomy(settings.paths.taxonomy)
    filters = SearchFilters(
        themes=tuple(resolve_label(taxonomy, "themes", t) for t in themes),
        doelgroepen=tuple(resolve_label(taxonomy, "doelgroepen", d) for d in doelgroepen),
        gemeenten=tuple(gemeenten),
        kind=resolve_kind(kind),
        min_replicability=min_score,
    )
    hits = search_catalogue(settings, query, filters, limit=limit, db_path=db_path)
    for rank, hit in enumerate(hits, start=1):
        if as_json:
            # The CLI user is the operator on the server: the model fields are theirs to see.
            click.echo(json.dumps({"rank": rank, **hit.to_dict(reviewer=True)}, ensure_ascii=False))
        else:
            _echo_hit(rank, hit, taxonomy, settings.search.reasons_shown)
    if not hits and not as_json:
        click.echo("Geen resultaten / no hits.", err=True)


@main.command("report")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (one file, charts inside: it can be mailed).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Catalogue file (default: [store] path).")
@pass_settings
def report_command(settings, out_path, db_path):
    """Write the Dutch report on the catalogue for policy staff (HTML, printable)."""
    from .report import report_from_catalogue

    report = report_from_catalogue(settings, out_path, db_path=db_path)
    click.echo(f"{out_path}: {report.total.n} inzendingen uit {report.n_gemeenten} gemeenten "
               f"({report.initiatives.n} initiatieven, {report.signals.n} signalen)")

__all__ = ["main", "pass_settings", "Settings"]
