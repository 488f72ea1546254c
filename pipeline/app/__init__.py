"""The web app: `create_app(settings)` builds the Flask app (see `pipeline.app.factory`)."""

from pipeline.app.factory import create_app

__all__ = ["create_app"]
