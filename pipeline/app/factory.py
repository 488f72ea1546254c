"""The web app over the catalogue: one Flask factory, `create_app`, for review, search and report.

`create_app(settings, db_path=None, test_config=None)` returns a Flask app that

- registers the blueprints listed in `MOUNTS` (add a page = add one line there),
- refuses every request without a reviewer session except on public blueprints (login, search,
  report, the page per initiative) and static files: a browser is sent to /login, anything else gets 401,
- protects every POST form with Flask-WTF's CSRFProtect (templates put `csrf_token()` in a hidden
  field `csrf_token`),
- signs sessions with a key read from `[serve] secret_key_file` (generated there on first start,
  never a constant in code), lets them expire after `[serve] session_lifetime_minutes`, sends the
  cookie over HTTPS only when `[serve] secure_cookies`, and ends a session as soon as its
  reviewer's password changed or the account was deactivated (a digest of the password hash is
  kept in the session and compared on every request),
- sends one Content-Security-Policy (no inline script or style except our templates' own blocks,
  by hash) and the other security headers on every response, public pages and errors included,
- offers templates the test `web_link` (only http(s) URLs may go into an href),
- renders every error in one place (`error.html`, in Dutch),
- opens one catalogue connection per request (`get_db()`), closed when the request ends.

`g.reviewer` is the logged-in reviewer's name or None on every request; public pages use it to
show reviewer-only fields to reviewers only. "/" sends reviewers to their queue and everyone else
to the public search.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import logging
import os
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import waitress
from flask import Flask, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.serving import WSGIRequestHandler

from pipeline.app.context import _close_db, _session_reviewer, format_time
from pipeline.core.config import Settings
from pipeline.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mount:
    """One blueprint of the app: `target` is "module:attribute"; `public` pages need no login;
    `nav` is the (Dutch label, endpoint) shown in the menu, if any."""

    target: str
    public: bool = False
    nav: tuple[str, str] | None = None
    reviewer_nav: bool = False  # show the menu link to logged-in reviewers only


MOUNTS: tuple[Mount, ...] = (
    Mount("pipeline.app.auth:auth_blueprint", public=True),
    Mount("pipeline.app.review_views:blueprint", nav=("Beoordelen", "review.queue"), reviewer_nav=True),
    Mount("pipeline.app.bulk_views:blueprint"),
    Mount(
        "pipeline.app.agreement_views:blueprint",
        nav=("Overeenstemming", "agreement.page"),
        reviewer_nav=True,
    ),
    Mount("pipeline.app.guide_views:blueprint", nav=("Gids", "guide.page"), reviewer_nav=True),
    Mount("pipeline.app.search_views:blueprint", public=True, nav=("Zoeken", "search.page")),
    Mount("pipeline.app.report_views:blueprint", public=True, nav=("Rapport", "report.page")),
    Mount("pipeline.app.initiative_views:blueprint", public=True),
    Mount("pipeline.app.link_views:blueprint"),
    Mount("pipeline.app.model_notice:blueprint"),
)

# Dutch wording of the errors reviewers and visitors can meet.
ERROR_TEXTS = {
    400: ("Ongeldig verzoek", "Het verzoek kon niet worden verwerkt."),
    401: ("Niet ingelogd", "Log in om deze pagina te bekijken."),
    403: ("Geen toegang", "U heeft geen toegang tot deze pagina."),
    404: ("Niet gevonden", "Deze pagina of dit initiatief bestaat niet."),
    405: ("Niet toegestaan", "Deze actie is hier niet toegestaan."),
    409: ("Conflict", "Iemand anders heeft dit tegelijk gewijzigd."),
    413: ("Te groot", "Het formulier is te groot om te verwerken. Maak de tekst korter."),
    503: ("Tijdelijk niet beschikbaar", "De catalogus kan nu niet worden gelezen of geschreven "
          "(schijf vol of alleen-lezen). Probeer het later opnieuw of waarschuw de beheerder."),
    500: ("Er ging iets mis", "Er ging iets mis op de server. Probeer het later opnieuw."),
}
CSRF_TEXT = (
    "Het formulier is verlopen of mist de beveiligingscode (CSRF). "
    "Laad de pagina opnieuw en probeer het nog eens."
)


def load_secret_key(path: Path) -> str:
    """The key in `path`; a new random key written there (mode 600) if the file does not exist.

    Raises PermissionError/OSError when the file cannot be read or created.
    """
    path = Path(path)
    try:
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process (a second worker) created it first: use theirs.
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    log.info("generated a new session key in %s", path)
    return key


# Defence in depth behind escaping, on every response (review, search, report, errors): scripts
# and styles come only from this site, so a description that slipped through escaping could not
# run a script. The few inline <style>/<script> blocks our own templates hold (search and report
# pages) are allowed by their SHA-256 (`inline_hashes`), never by 'unsafe-inline'.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'{scripts}; style-src 'self'{styles}; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_INLINE_BLOCK = re.compile(r"<(script|style)(\s[^>]*)?>(.*?)</\1\s*>", re.DOTALL | re.IGNORECASE)
_TEMPLATE_MARKUP = ("{{", "{%", "{#")
# Only links with these schemes become clickable; a sender's "javascript:..." stays plain text.
WEB_LINK_SCHEMES = ("http", "https")


def inline_hashes(sources: dict[str, str]) -> dict[str, list[str]]:
    """CSP source expressions ('sha256-...') for the inline <script> and <style> blocks of
    template `sources` ({name: text}), as {"script": [...], "style": [...]}.

    A block that holds template markup ({{ }}, {% %}) renders differently per request and cannot
    be hashed ahead: it is left out (and would be blocked by the browser), with a warning naming
    the template. Scripts with a src attribute are not inline and need no hash.
    """
    out: dict[str, list[str]] = {"script": [], "style": []}
    for name, text in sorted(sources.items()):
        for match in _INLINE_BLOCK.finditer(text):
            tag, attributes, body = match.group(1).lower(), match.group(2) or "", match.group(3)
            if tag == "script" and re.search(r"\bsrc\s*=", attributes, re.IGNORECASE):
                continue
            if any(mark in body for mark in _TEMPLATE_MARKUP):
                log.warning("inline <%s> in %s holds template markup: the browser will block it "
                            "(move it to pipeline/static/)", tag, name)
                continue
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            expression = f"'sha256-{digest}'"
            if expression not in out[tag]:
                out[tag].append(expression)
    return out


def content_security_policy(app: Flask) -> str:
    """The Content-Security-Policy of every response of `app` (see CONTENT_SECURITY_POLICY)."""
    loader = app.jinja_env.loader
    sources = {}
    for name in loader.list_templates():
        if name.endswith((".html", ".htm")):
            sources[name] = loader.get_source(app.jinja_env, name)[0]
    hashes = inline_hashes(sources)
    return CONTENT_SECURITY_POLICY.format(
        scripts="".join(" " + h for h in hashes["script"]),
        styles="".join(" " + h for h in hashes["style"]),
    )


def is_web_link(url) -> bool:
    """True for an absolute http(s) URL with a host: safe to put in an href. A sender's
    "javascript:", "data:" or relative value is shown as text instead of a link."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_LINK_SCHEMES and bool(parts.netloc)


def _import_target(target: str):
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def render_error(exc):
    """Every error page of the app, in Dutch, with the right status code."""
    if isinstance(exc, CSRFError):
        code, title, text = 400, "Beveiligingscode ontbreekt", CSRF_TEXT
    elif isinstance(exc, HTTPException):
        code = exc.code or 500
        title, text = ERROR_TEXTS.get(code, (exc.name, exc.description or ""))
        # Our own aborts may carry a specific Dutch message.
        if exc.description and getattr(exc, "dutch", False):
            text = exc.description
    elif isinstance(exc, sqlite3.DatabaseError):
        log.error("catalogue unavailable on %s: %s", request.path, exc)
        code = 503
        title, text = ERROR_TEXTS[503]
    else:
        log.exception("unhandled error on %s", request.path)
        code = 500
        title, text = ERROR_TEXTS[500]
    return render_template("error.html", code=code, title=title, text=text), code


def create_app(settings: Settings, db_path=None, test_config: dict | None = None) -> Flask:
    """Build the web app over the catalogue at `db_path` (default: the [store] path).

    `test_config` overrides Flask settings (e.g. {"TESTING": True, "SECRET_KEY": "x"}).
    Raises OSError when the secret key file cannot be read or created.
    """
    app = Flask(__name__)
    test_config = dict(test_config or {})
    app.config.update(
        DATABASE=str(db_path or settings.store.path),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.serve.session_lifetime_minutes),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.serve.secure_cookies,
        # The CSRF token lives as long as the session; a separate shorter limit would make a
        # reviewer who reads a long text lose their corrections.
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=settings.serve.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=settings.serve.max_request_bytes,
        # The cookie is only re-sent when the session changes (login, skip, logout).
        SESSION_REFRESH_EACH_REQUEST=False,
        SETTINGS=settings,
    )
    if "SECRET_KEY" not in test_config:
        app.config["SECRET_KEY"] = load_secret_key(settings.serve.secret_key_file)
    app.config.update(test_config)

    public_blueprints = set()
    nav = []
    for mount in MOUNTS:
        blueprint = _import_target(mount.target)
        app.register_blueprint(blueprint)
        if mount.public:
            public_blueprints.add(blueprint.name)
        if mount.nav:
            nav.append((mount.nav, mount.reviewer_nav))
    app.config["PUBLIC_BLUEPRINTS"] = frozenset(public_blueprints)

    @app.before_request
    def _require_login():
        g.reviewer = _session_reviewer()
        if g.reviewer or request.endpoint in ("static", "index", "favicon"):
            return None
        if request.blueprint in app.config["PUBLIC_BLUEPRINTS"]:
            return None
        if request.method == "GET" and request.accept_mimetypes.accept_html:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return render_error(_unauthorized())

    # After the login check, so an anonymous POST is told to log in rather than about CSRF.
    CSRFProtect(app)

    @app.context_processor
    def _menu():
        links = [
            (label, endpoint)
            for (label, endpoint), reviewers_only in nav
            if g.get("reviewer") or not reviewers_only
        ]
        return {"nav_links": links, "reviewer": g.get("reviewer")}

    @app.route("/favicon.ico")
    def favicon():
        # Browsers ask for it on every first visit; without a session it would bounce to /login.
        return "", 204

    @app.route("/")
    def index():
        # Reviewers start at their queue; everyone else (policy staff) at the public search.
        if g.reviewer:
            return redirect(url_for("review.queue"))
        return redirect(url_for("search.page"))

    policy = content_security_policy(app)

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if g.get("reviewer") or request.blueprint not in app.config["PUBLIC_BLUEPRINTS"] \
                or request.endpoint == "auth.login":
            # Reviewer pages (and the login form) stay out of browser and proxy caches: the back
            # button after logout on a shared computer shows nothing.
            response.headers["Cache-Control"] = "no-store"
            response.headers["Vary"] = "Cookie"
        return response

    timezone = _checked_timezone(settings.serve.display_timezone)
    app.add_template_filter(lambda value: format_time(value, timezone), "tijd")
    app.add_template_test(is_web_link, "web_link")
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(InternalServerError, render_error)
    app.register_error_handler(sqlite3.DatabaseError, render_error)
    if not app.config.get("TESTING"):
        app.register_error_handler(Exception, render_error)
    app.teardown_appcontext(_close_db)
    if settings.serve.trusted_proxies > 0:
        # Behind a TLS proxy: take the visitor's scheme, host and address from the proxy's
        # X-Forwarded-* headers, and only from as many hops as are configured.
        n = settings.serve.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    return app


def serve(app: Flask, *, host: str, port: int, threads: int, dev: bool = False) -> None:
    """Serve `app` until stopped: waitress with `threads` request threads, or with `dev` Flask's
    development server with its reloader. waitress sends no version in its Server header."""
    if dev:
        from werkzeug.serving import run_simple

        run_simple(host, port, app, threaded=True, use_reloader=True, use_debugger=False,
                   request_handler=QuietRequestHandler)
        return
    waitress.serve(app, host=host, port=port, threads=threads, ident=QuietRequestHandler.server_version,
                   # The catalogue's pages are small; a slow client must not hold a thread.
                   channel_timeout=60, clear_untrusted_proxy_headers=True)


def _checked_timezone(name: str) -> str:
    """`name` when it is a known IANA time zone; ConfigError at start rather than on a page."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"[serve] display_timezone {name!r} is not a known time zone (e.g. 'Europe/Amsterdam')"
        ) from None
    return name


def _unauthorized():
    from werkzeug.exceptions import Unauthorized

    return Unauthorized()


class QuietRequestHandler(WSGIRequestHandler):
    """`pipeline serve`'s request handler: the Server header names no versions."""

    server_version = "pipeline"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version


__all__ = [
    "create_app", "load_secret_key", "MOUNTS", "Mount",
]
