"""The `pipeline` command: a thin click layer over the library (see `pipeline.cli.main`)."""

from pipeline.cli.main import main

__all__ = ["main"]
