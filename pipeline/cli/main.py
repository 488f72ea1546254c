"""The `pipeline` command: a thin click layer over the stage functions.

Each command builds objects from the settings, calls library functions, and turns a
`PipelineError` into a clean message (exit code 1) at this edge only.
"""

from __future__ import annotations

import threading
import time
from contextlib import closing
from pathlib import Path

import click

from pipeline.cli.common import _echo, db_option, pass_settings
from pipeline.cli.retrain import export_training_data, retrain_command
from pipeline.core.config import Settings


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
@click.option("--links", "links_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None,
              help="Reviewers' same-idea pairs (JSONL from export-labels) to apply as must-link / "
                   "cannot-link (default: [review] links_export_path when it exists).")
@click.option("--no-links", "no_links", is_flag=True, help="Ignore reviewers' same-idea pairs.")
@pass_settings
def group_command(settings, input_path, out_path, links_path, no_links):
    """Group the initiatives in INPUT (JSONL/CSV) that carry the same idea."""
    from pipeline.catalogue.idea_links import read_pairs
    from pipeline.models.group_files import group_file

    if links_path is None and Path(settings.review.links_export_path).exists():
        links_path = settings.review.links_export_path
    links = [] if no_links or links_path is None else [
        (p["a"], p["b"], p["same"]) for p in read_pairs(links_path)]
    run = group_file(input_path, out_path, settings, links=links)
    for item in run.ingest.rejected:
        _echo(item.message(str(input_path)), err=True)
    _echo(run.summary())


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

    from pipeline.models.group_files import similar_in_file

    result, neighbours = similar_in_file(input_path, query_id, k or settings.group.neighbours,
                                         settings)
    rows = {row.id: row for row in result.accepted}
    for rank, item in enumerate(neighbours, start=1):
        row = rows[item.id]
        if as_json:
            _echo(json.dumps({"rank": rank, **item.to_dict(), "gemeente": row.gemeente,
                                   "naam": row.naam}, ensure_ascii=False))
        else:
            title = row.naam or row.omschrijving[:60]
            _echo(f"{rank}. {item.id}  gelijkenis {item.similarity:.2f}  "
                       f"(score {item.score:+.2f})  {row.gemeente}: {title}")



# --- search / report (pipeline/catalogue/search.py, pipeline/app/report.py) ---------------------------------


def _echo_hit(rank: int, hit, taxonomy, reasons_shown: int, title_chars: int) -> None:
    from pipeline.catalogue.records import places
    from pipeline.catalogue.readmodel import KIND_NAMES

    r = hit.record
    title = r.get("naam") or (r.get("omschrijving") or "")[:title_chars]
    _echo(f"{rank}. {r['id']}  score {hit.score:.3f}  {', '.join(places(r))}: {title}")
    themes = ", ".join(taxonomy.name("themes", t) for t in r.get("themes") or ()) or "-"
    groups = ", ".join(taxonomy.name("doelgroepen", d) for d in r.get("doelgroepen") or ()) or "-"
    kind = KIND_NAMES.get(r.get("kind"), "-").lower()
    _echo(f"   thema's: {themes} | doelgroepen: {groups} | soort: {kind}")
    if r.get("replicability"):
        reasons = "; ".join(x["reden"] for x in (r.get("reasons") or [])[:reasons_shown])
        top = max(taxonomy.replicability)
        _echo(f"   overdraagbaarheid {r['replicability']}/{top}" + (f": {reasons}" if reasons else ""))
    if r.get("group_gemeenten"):
        _echo(f"   ook in {', '.join(r['group_gemeenten'])}")


@main.command("search")
@click.argument("query", required=False, default="")
@db_option
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Most hits to show (default: [search] limit).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit and line (id, score, ...).")
@click.option("--thema", "themes", multiple=True, help="Theme id or Dutch name; repeat for OR.")
@click.option("--doelgroep", "doelgroepen", multiple=True, help="Target group id or Dutch name; repeat for OR.")
@click.option("--gemeente", "gemeenten", multiple=True,
              help="Municipality: name, spelling, old name or CBS code; repeat for OR.")
@click.option("--provincie", "provincies", multiple=True, help="Province; repeat for OR.")
@click.option("--soort", "kind", default=None, help="initiatief or signaal.")
@click.option("--min-score", "min_score", type=click.IntRange(1, 5), default=None,
              help="Minimum replicability (1-5).")
@pass_settings
def search_command(settings, query, db_path, limit, as_json, themes, doelgroepen, gemeenten, provincies,
                   kind, min_score):
    """Search the catalogue for QUERY (Dutch free text), by meaning and words together.

    Without QUERY, lists the rows that match the filters, most replicable first.
    """
    import json

    from pipeline.core.config import load_taxonomy
    from pipeline.catalogue.search import (SearchFilters, resolve_kind, resolve_label, resolve_places,
                                           resolve_provinces, search_catalogue)
    from pipeline.core.municipalities import reference_from_settings

    taxonomy = load_taxonomy(settings.paths.taxonomy)
    reference = reference_from_settings(settings)
    filters = SearchFilters(
        themes=tuple(resolve_label(taxonomy, "themes", t) for t in themes),
        doelgroepen=tuple(resolve_label(taxonomy, "doelgroepen", d) for d in doelgroepen),
        gemeenten=resolve_places(reference, gemeenten),
        provincies=resolve_provinces(reference, provincies),
        kind=resolve_kind(kind),
        min_replicability=min_score,
    )
    hits = search_catalogue(settings, query, filters, limit=limit, db_path=db_path)
    for rank, hit in enumerate(hits, start=1):
        if as_json:
            # The CLI user is the operator on the server: the model fields are theirs to see.
            _echo(json.dumps({"rank": rank, **hit.to_dict(reviewer=True)}, ensure_ascii=False))
        else:
            _echo_hit(rank, hit, taxonomy, settings.search.reasons_shown, settings.search.title_chars)
    if not hits and not as_json:
        _echo("Geen passende initiatieven / no matching initiatives.", err=True)


@main.command("report")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write (one file, charts inside: it can be mailed).")
@db_option
@pass_settings
def report_command(settings, out_path, db_path):
    """Write the Dutch report on the catalogue for policy staff (HTML, printable)."""
    from pipeline.app.report import report_from_catalogue

    report = report_from_catalogue(settings, out_path, db_path=db_path)
    _echo(f"{out_path}: {report.total.n} inzendingen uit {report.n_gemeenten} gemeenten "
               f"({report.initiatives.n} initiatieven, {report.signals.n} signalen)")


# --- catalogue and scheduled job (store, inbox) ------------------------------------------------


def _load_predictor(settings, model_dir):
    """The released model (or `model_dir`) as a `pipeline.predict.Predictor`."""
    from pipeline.models.predict import Predictor

    return Predictor.load(model_dir, settings)


def _setup_run_log(log_path: Path) -> None:
    """Send the job's log lines to the operator's log file (appending)."""
    import logging
    import logging.handlers

    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("pipeline.run")
    if not any(getattr(h, "baseFilename", None) == str(log_path.resolve()) for h in logger.handlers):
        # Watched: when logrotate moves the file away, the next line goes to a new file.
        handler = logging.handlers.WatchedFileHandler(log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [pid %(process)d] %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@main.command("run")
@click.option("--inbox", "inbox", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder the municipalities' files land in (default: [run] inbox).")
@db_option
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model folder (default: the released model, models/LATEST).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Operator log file (default: [run] log_path).")
@click.option("--settle-seconds", "settle_seconds", type=click.FloatRange(min=0), default=None,
              help="Leave files changed less than this many seconds ago for the next run "
                   "(default: [run] settle_seconds; 0 to take files just copied in by hand).")
@pass_settings
def run_command(settings, inbox, db_path, model_dir, log_path, settle_seconds):
    """The scheduled job: classify, score, store and group every new file in the inbox.

    Done files move to INBOX/processed/, unreadable ones to INBOX/rejected/ with a report. Prints
    one summary line; exits 0 when another run is busy, 1 when a file failed unexpectedly.
    """
    from pipeline.catalogue import schema
    from pipeline.models.embed import encoder_from_config
    from pipeline.models.group_incremental import grouper_from_config
    from pipeline.jobs.inbox import run_inbox

    _setup_run_log(log_path or settings.run.log_path)
    inbox = inbox or settings.run.inbox
    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        # The factories run only when needed (a run with nothing new loads no model). No separate
        # embedding step: the model embeds through its own cached encoder, and embedding here
        # too would cost double whenever the two caches differ; the "predict" seconds in the log
        # include embedding (bench/bench_run.py splits them).
        report = run_inbox(
            inbox, conn,
            predictor_factory=lambda: _load_predictor(settings, model_dir),
            grouper_factory=lambda: grouper_from_config(
                settings.group, encoder=encoder_from_config(settings.embed)),
            ignore_suffixes=settings.run.ignore_suffixes, lock_name=settings.run.lock_name,
            limits=settings.ingest,
            settle_seconds=settings.run.settle_seconds if settle_seconds is None else settle_seconds,
            # A caller embedding the CLI (tests/run_paused.py) may follow the run: main(obj=...).
            checkpoint=click.get_current_context().obj.get("run_checkpoint"),
        )
    _echo(report.summary())
    if not report.ok:
        raise SystemExit(1)


@main.command("reclassify")
@db_option
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model folder (default: the released model, models/LATEST).")
@pass_settings
def reclassify_command(settings, db_path, model_dir):
    """Re-predict current rows made by another model; reviewed rows are never overwritten."""
    from pipeline.catalogue import schema
    from pipeline.jobs.reclassify import reclassify

    predictor = _load_predictor(settings, model_dir)
    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        report = reclassify(conn, predictor)
    _echo(report.summary())


@main.command("regroup")
@db_option
@click.option("--full", "full", is_flag=True, help="Group the whole catalogue again.")
@pass_settings
def regroup_command(settings, db_path, full):
    """Bring the catalogue's same-idea groups up to date (as `pipeline run` does after files)."""
    from pipeline.jobs.regroup import regroup_catalogue

    _echo(regroup_catalogue(settings, db_path, full=full).summary())


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "jsonl"]), required=True,
              help="csv (;-separated, opens in Dutch Excel), xlsx or jsonl.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write.")
@db_option
@click.option("--rejected", "rejected", is_flag=True,
              help="Export the rejected rows (file, row, field, message) instead of the catalogue.")
@pass_settings
def export_command(settings, fmt, out_path, db_path, rejected):
    """Write the catalogue as policy staff use it, with Dutch column names."""
    from pipeline.catalogue import export
    from pipeline.catalogue import schema
    from pipeline.core.config import load_taxonomy

    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        if rejected:
            records, columns = export.rejected_records(conn), export.REJECTED_COLUMNS
        else:
            taxonomy = load_taxonomy(settings.paths.taxonomy)
            records = export.export_records(conn, taxonomy, separator=settings.export.list_separator)
            columns = export.EXPORT_COLUMNS
    export.write_export(records, out_path, fmt, columns=columns, sheet_name=settings.export.sheet_name,
                       csv_delimiter=settings.export.csv_delimiter)
    what = "afgewezen rijen" if rejected else "initiatieven"
    _echo(f"{out_path}: {len(records)} {what} ({fmt})")


@main.command("train")
@click.option("--labelled", "labelled_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of labelled *.jsonl files (default: [paths] labelled).")
@click.option("--out", "models_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Models folder to write <model-id>/ and LATEST into (default: [paths] models).")
@click.option("--folds", type=int, default=None,
              help="Cross-validation folds (default: [train] folds; below 2 skips cross-validation).")
@click.option("--force", is_flag=True,
              help="Train even when a model with the same data, settings and code exists.")
@pass_settings
def train_command(settings, labelled_dir, models_dir, folds, force):
    """Cross-validate, fit on all labelled rows, and write a traceable model folder."""
    from pipeline.training.card import summary_lines
    from pipeline.training.train import train_model

    def log(message):
        _echo(message, err=True)

    result = train_model(settings, labelled_dir=labelled_dir, models_dir=models_dir, folds=folds, log=log,
                         force=force)
    for line in summary_lines(result.metrics):
        _echo(line)
    _echo(f"model {result.model_id} written to {result.model_dir}")


@main.command("classify")
@click.argument("input_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="JSONL file for the predictions (one line per accepted row, input order).")
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Model folder (default: the one named in models/LATEST).")
@pass_settings
def classify_command(settings, input_path, out_path, model_dir):
    """Classify a JSONL or CSV file of initiatives: themes, doelgroepen and kind per row."""
    from pipeline.models.predict import Predictor, write_predictions

    summary = write_predictions(settings, input_path, out_path, Predictor.load(model_dir, settings),
                                warn=lambda message: _echo(message, err=True))
    _echo(summary)



# --- review in the browser (pipeline/app/, pipeline/catalogue/reviews.py) -----------------------------


@main.command("serve")
@db_option
@click.option("--host", default=None, help="Address to listen on (default: [serve] host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default: [serve] port).")
@click.option("--dev", is_flag=True,
              help="Flask's development server with its reloader (never in production).")
@pass_settings
def serve_command(settings, db_path, host, port, dev):
    """Serve the Dutch web app: login, review queue, agreement, search and report pages.

    Runs on waitress with [serve] threads; behind a TLS proxy set [serve] trusted_proxies."""
    from pipeline.app.factory import create_app, serve

    app = create_app(settings, db_path=db_path)
    host = host or settings.serve.host
    port = port or settings.serve.port
    server = "Flask development server (--dev)" if dev else f"waitress, {settings.serve.threads} threads"
    if Path(app.config["DATABASE"]).exists():
        # The first /zoeken should not wait for the index and the encoder.
        from pipeline.app.search_views import warm_up

        start = time.perf_counter()
        index = warm_up(app)
        _echo(f"Search index ready: {len(index.records)} rows in {time.perf_counter() - start:.1f} s")
        # The review queue reads every prediction once; in the background, so search is not kept
        # waiting (a reviewer who comes before it is done gets a page that asks again shortly).
        from pipeline.app.review_views import warm_up_queue

        threading.Thread(target=warm_up_queue, args=(app,), name="queue-warm-up", daemon=True).start()
    _echo(f"Serving the catalogue {app.config['DATABASE']} on http://{host}:{port}/ ({server})")
    serve(app, host=host, port=port, threads=settings.serve.threads, dev=dev)


@main.group("reviewer")
def reviewer_group():
    """Reviewer accounts for the web app."""


@reviewer_group.command("add")
@click.argument("name")
@db_option
@click.option("--password-stdin", "password_stdin", is_flag=True,
              help="Read the password from the first line of stdin (for scripts).")
@pass_settings
def reviewer_add_command(settings, name, db_path, password_stdin):
    """Create the reviewer account NAME; asks for the password twice."""
    from pipeline.catalogue import schema
    from pipeline.catalogue.accounts import add_reviewer

    password = _read_new_password(password_stdin)
    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        add_reviewer(conn, name, password, min_password_chars=settings.review.min_password_chars)
    _echo(f"reviewer {name.strip()!r} added")


@reviewer_group.command("passwd")
@click.argument("name")
@db_option
@click.option("--password-stdin", "password_stdin", is_flag=True,
              help="Read the password from the first line of stdin (for scripts).")
@pass_settings
def reviewer_passwd_command(settings, name, db_path, password_stdin):
    """Set a new password for reviewer NAME; asks for it twice."""
    from pipeline.catalogue import schema
    from pipeline.catalogue.accounts import set_password

    password = _read_new_password(password_stdin)
    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        set_password(conn, name, password, min_password_chars=settings.review.min_password_chars)
    _echo(f"password of reviewer {name.strip()!r} changed")


@reviewer_group.command("deactivate")
@click.argument("name")
@db_option
@pass_settings
def reviewer_deactivate_command(settings, name, db_path):
    """Stop reviewer NAME from logging in; their reviews stay. `passwd` reactivates."""
    from pipeline.catalogue import schema
    from pipeline.catalogue.accounts import deactivate_reviewer

    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        deactivate_reviewer(conn, name)
    _echo(f"reviewer {name.strip()!r} deactivated; their sessions end at the next request")


@reviewer_group.command("list")
@db_option
@pass_settings
def reviewer_list_command(settings, db_path):
    """List reviewer accounts with how many reviews each saved."""
    from pipeline.catalogue import schema
    from pipeline.catalogue.accounts import list_reviewers

    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        rows = list_reviewers(conn)
    for row in rows:
        state = "" if row["active"] else "  (inactive)"
        _echo(f"{row['name']}\t{row['reviews']} reviews\tsince {row['created_at']}{state}")


def _read_new_password(password_stdin: bool) -> str:
    if password_stdin:
        import sys

        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Wachtwoord / password", hide_input=True,
                        confirmation_prompt="Nogmaals / repeat")


@main.command("export-labels")
@db_option
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSONL file to write (default: [review] export_path, in data/labelled/).")
@click.option("--if-exists", "if_exists", is_flag=True,
              help="Do nothing (exit 0) when the catalogue file does not exist (for `make train`).")
@pass_settings
def export_labels_command(settings, db_path, out_path, if_exists):
    """Write reviewers' labels in force, one row per initiative, in the seed format (training data),
    and their same-idea marks as pairs ([review] links_export_path).

    Rows of an earlier export that this catalogue lacks are kept, so corrections are never lost.
    """
    for line in export_training_data(settings, db_path, out_path, if_exists=if_exists):
        _echo(line)


main.add_command(retrain_command)


__all__ = ["main", "pass_settings", "Settings"]
