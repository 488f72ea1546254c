"""Reviewer login and logout for the web app: throttled password checks, local-only redirects, and
the session fingerprint that ends a session when the password changes.
"""
from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from pipeline.app.context import SESSION_FINGERPRINT_KEY, SESSION_TOKEN_KEY, SESSION_USER_KEY
from pipeline.app.review_views import _db, _settings
from pipeline.catalogue.accounts import check_password, end_web_session, open_web_session, session_fingerprint

auth_blueprint = Blueprint("auth", __name__)


def is_local_path(target: str | None) -> bool:
    """True when `target` is a path on this site ("/review/?status=alle"), never another site.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so "/<tab>/evil"
    and "/<backslash>evil" would become "//evil" (another host): any control character, space or
    backslash is refused, and the rest must parse without scheme or host ("https:evil" has one).
    """
    from urllib.parse import urlsplit

    if not target or "\\" in target or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in target):
        return False
    parts = urlsplit(target)
    return (not parts.scheme and not parts.netloc and parts.path.startswith("/")
            and not parts.path.startswith("//"))


def _safe_next(target: str | None) -> str:
    """`target` when it is a local path (see `is_local_path`), else the queue."""
    return target if is_local_path(target) else url_for("review.queue")


class LoginThrottle:
    """Failed logins per key within a sliding window (in this server process).

    `blocked(key)` is True once `max_failures` failures fell within `window_seconds`; a success
    clears the key. The login page keys on (name, client address), so someone guessing from one
    place cannot lock the named reviewer out everywhere else. Kept in memory: `pipeline serve` is
    one process, and a restart forgetting the count only gives a guesser one more window.
    """

    def __init__(self, *, max_failures: int, window_seconds: float):
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._failures: dict[str, list[float]] = {}
        import threading

        self._lock = threading.Lock()

    def _recent(self, key, now: float) -> list[float]:
        recent = [t for t in self._failures.get(key, []) if now - t < self.window_seconds]
        if recent:
            self._failures[key] = recent
        else:  # forget keys whose window passed, so guessed names do not pile up in memory
            self._failures.pop(key, None)
        return recent

    def blocked(self, key) -> bool:
        import time

        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.max_failures

    def attempt(self, key) -> bool:
        """Check and count in one step: False when `key` is blocked; else the attempt counts as a
        failure right away (a success clears it), so simultaneous guesses cannot all pass the
        check before any of them is counted."""
        import time

        with self._lock:
            now = time.monotonic()
            recent = self._recent(key, now)
            if len(recent) >= self.max_failures:
                return False
            self._failures[key] = recent + [now]
            return True

    def failed(self, key) -> None:
        import time

        with self._lock:
            now = time.monotonic()
            self._failures[key] = self._recent(key, now) + [now]

    def succeeded(self, key) -> None:
        with self._lock:
            self._failures.pop(key, None)


def _throttle() -> LoginThrottle:
    extensions = current_app.extensions
    if "pipeline_login_throttle" not in extensions:
        serve = _settings().serve
        extensions["pipeline_login_throttle"] = LoginThrottle(
            max_failures=serve.max_failed_logins,
            window_seconds=serve.failed_login_window_minutes * 60,
        )
    return extensions["pipeline_login_throttle"]


@auth_blueprint.route("/login", methods=["GET", "POST"])
def login():

    next_url = request.args.get("next", "")
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        throttle = _throttle()
        # Behind a proxy every client has the proxy's address: then this is per name again.
        key = (name.casefold(), request.remote_addr)
        if not throttle.attempt(key):
            minutes = _settings().serve.failed_login_window_minutes
            error = (f"Te veel mislukte pogingen voor deze naam vanaf dit adres. Probeer het over "
                     f"{minutes} minuten opnieuw.")
            return render_template("login.html", error=error, name=name, next_url=next_url), 429
        if check_password(_db(), name, request.form.get("password", "")):
            throttle.succeeded(key)
            session.clear()  # a fresh session at login: no fixation of an earlier cookie
            session.permanent = True
            session[SESSION_USER_KEY] = name
            session[SESSION_FINGERPRINT_KEY] = session_fingerprint(_db(), name)
            session[SESSION_TOKEN_KEY] = open_web_session(
                _db(), name, lifetime_seconds=_settings().serve.session_lifetime_minutes * 60)
            return redirect(_safe_next(next_url))
        return (
            render_template(
                "login.html", error="Onbekende naam of onjuist wachtwoord.", name=name,
                next_url=next_url,
            ),
            401,
        )
    return render_template("login.html", next_url=next_url, name="")


@auth_blueprint.route("/logout", methods=["POST"])
def logout():
    token = session.get(SESSION_TOKEN_KEY)
    if token:
        end_web_session(_db(), token)  # a copy of the cookie is worth nothing from now on
    session.clear()
    flash("U bent uitgelogd.", "success")
    return redirect(url_for("auth.login"))
