"""`pipeline export-labels` and `pipeline retrain`: reviewers' work back into the model.

`retrain` = export labels and same-idea pairs + train + reclassify, one command over the same
library functions the three separate commands call.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import click

from pipeline.cli.common import _echo, db_option, pass_settings


def export_training_data(settings, db_path=None, out_path=None, *, if_exists: bool = False) -> list[str]:
    """Write the reviewed labels ([review] export_path or `out_path`) and the same-idea pairs
    ([review] links_export_path) from the catalogue; return the lines to print.

    Rows and pairs of an earlier export that this catalogue lacks are kept. With `if_exists`, a
    missing catalogue file is no error (nothing is written)."""
    from pipeline.catalogue import idea_links, schema
    from pipeline.catalogue.reviews import disputed_ids, export_reviewed, merge_with_existing
    from pipeline.core.records import write_jsonl

    out_path = Path(out_path or settings.review.export_path)
    links_path = Path(settings.review.links_export_path)
    db_path = Path(db_path or settings.store.path)
    if if_exists and not db_path.exists():
        return [f"no catalogue at {db_path}: no reviewed labels to export"]
    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        # A disputed item (no third reviewer decided yet) is no training data.
        disputed = disputed_ids(conn)
        records = export_reviewed(conn, leave_out=disputed)
        pairs = idea_links.export_links(conn)
    rows, kept = merge_with_existing(records, out_path, leave_out=disputed)
    write_jsonl(rows, out_path)
    lines = [f"{out_path}: {len(records)} reviewed initiatives" + (f" (+{kept} kept from the earlier file)" if kept else "")]
    if disputed:
        lines.append(f"{len(disputed)} disputed initiative(s) left out until a third reviewer decides: "
                     + ", ".join(sorted(disputed)[:10]) + (" ..." if len(disputed) > 10 else ""))
    if pairs or links_path.exists():
        pair_rows, kept_pairs = idea_links.merge_pairs(pairs, links_path)
        links_path.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(pair_rows, links_path)
        same = sum(1 for p in pair_rows if p["same"])
        lines.append(f"{links_path}: {len(pair_rows)} same-idea pairs ({same} zelfde idee, "
                     f"{len(pair_rows) - same} ander idee)"
                     + (f" (+{kept_pairs} kept from the earlier file)" if kept_pairs else ""))
    return lines


@click.command("retrain")
@db_option
@click.option("--folds", type=int, default=None,
              help="Cross-validation folds (default: [train] folds; 0 skips it: faster, no new scores).")
@click.option("--force", is_flag=True, help="Train even when a model with the same data exists.")
@pass_settings
def retrain_command(settings, db_path, folds, force):
    """Export reviewed labels and pairs, train a new model, re-predict the catalogue with it.

    Reviewed rows keep their reviewers' labels; the web app stops showing "Er is een nieuwer
    model beschikbaar" once the catalogue's predictions come from the released model."""
    from pipeline.catalogue import schema
    from pipeline.jobs.reclassify import reclassify
    from pipeline.models.predict import Predictor
    from pipeline.training.card import summary_lines
    from pipeline.training.train import train_model

    db_path = Path(db_path or settings.store.path)
    if not db_path.exists():
        raise click.ClickException(f"{db_path}: geen catalogus / no catalogue to retrain from "
                                   "(give --db or run `pipeline run` first)")
    for line in export_training_data(settings, db_path):
        _echo(line)
    result = train_model(settings, folds=folds, force=force, log=lambda m: _echo(m, err=True))
    for line in summary_lines(result.metrics):
        _echo(line)
    _echo(f"model {result.model_id} in {result.model_dir}")
    predictor = Predictor.load(result.model_dir, settings)
    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        report = reclassify(conn, predictor)
    _echo(report.summary())
