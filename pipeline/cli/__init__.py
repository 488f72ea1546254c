"""The `pipeline` command: a thin click layer over the library (see `pipeline.cli.main`)."""

from pipeline.cli.main import main
from pipeline.cli import encoder  # noqa: F401  (registers `pipeline build-encoder`)

__all__ = ["main"]
