"""Per-request state of the web app: the catalogue connection (one per request, closed after it),
the logged-in reviewer from the session, and times shown in Dutch local time.
"""
from __future__ import annotations

from flask import current_app, g, session

from pipeline.catalogue import schema
from pipeline.catalogue.accounts import session_fingerprint, web_session_reviewer
from pipeline.core.config import load_taxonomy

SESSION_USER_KEY = "reviewer"
# A digest of the reviewer's password hash at login (review.session_fingerprint): a session ends
# when the password changes or the account is deactivated.
SESSION_FINGERPRINT_KEY = "reviewer_fingerprint"
# The server-side session (catalogue table web_sessions) this cookie stands for: logout ends it.
SESSION_TOKEN_KEY = "session_token"


def get_db():
    """The catalogue connection of this request (opened on first use, closed at teardown)."""
    if "db" not in g:

        g.db = schema.connect_from_config(
            current_app.config["SETTINGS"].store, current_app.config["DATABASE"]
        )
    return g.db


def get_taxonomy():
    """The label taxonomy of this app ([paths] taxonomy), read once per app."""
    extensions = current_app.extensions
    if "pipeline_taxonomy" not in extensions:
        extensions["pipeline_taxonomy"] = load_taxonomy(current_app.config["SETTINGS"].paths.taxonomy)
    return extensions["pipeline_taxonomy"]


def _close_db(_exc=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def format_time(value: str | None, timezone: str) -> str:
    """An ISO 8601 time from the catalogue (UTC) in `timezone` ([serve] display_timezone),
    "23-11-2026 20:14"; "" for None, the value itself when it is no ISO time."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(timezone))
    return moment.strftime("%d-%m-%Y %H:%M")


def _session_reviewer() -> str | None:
    """The reviewer of this request's session; None (and the session cleared) when there is none
    or the account's password changed or it was deactivated since login."""
    import hmac


    name = session.get(SESSION_USER_KEY)
    if name is None:
        return None
    held = session.get(SESSION_FINGERPRINT_KEY)
    current = session_fingerprint(get_db(), name)
    if held is None or current is None or not hmac.compare_digest(held, current):
        session.clear()
        return None
    token = session.get(SESSION_TOKEN_KEY)
    if not isinstance(token, str) or web_session_reviewer(get_db(), token) != name:
        session.clear()
        return None
    return name
