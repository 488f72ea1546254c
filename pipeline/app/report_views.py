"""The report pages: /rapport (HTML with charts) and /rapport/download."""
from __future__ import annotations

import threading
import time

from flask import Blueprint, Response, current_app, render_template, url_for

from pipeline.app.context import get_db, get_taxonomy
from pipeline.catalogue import export
from pipeline.catalogue.readmodel import catalogue_signature
from pipeline.app.report import Report, build_report, render_charts, render_report_html, report_context
from pipeline.app.search_views import app_catalogue
from pipeline.core.municipalities import reference_from_settings

blueprint = Blueprint("report", __name__)


def _current_report() -> tuple[Report, object]:
    """The report on the app's catalogue (records through `search.app_catalogue`), rebuilt
    (charts too) only when the catalogue changed."""
    settings = current_app.config["SETTINGS"]
    cache = current_app.extensions.setdefault("pipeline.report", {"lock": threading.Lock()})
    snapshot = app_catalogue(get_db())
    with cache["lock"]:
        # Rebuilt when the catalogue changed, but at most every [report] rebuild_min_seconds:
        # a burst of review saves (each changes the signature) does not redraw the charts each time.
        fresh = time.monotonic() - cache.get("built_at", -1e9) < settings.report.rebuild_min_seconds
        if cache.get("signature") != snapshot.signature and not (fresh and "report" in cache):
            taxonomy = get_taxonomy()
            report = build_report(snapshot.records, snapshot.groups, taxonomy, settings.report,
                                  reference=reference_from_settings(settings),
                                  display_timezone=settings.serve.display_timezone)
            report.charts = render_charts(report, settings.report)
            cache.update(signature=snapshot.signature, report=report, taxonomy=taxonomy,
                         built_at=time.monotonic())
        return cache["report"], cache["taxonomy"]


@blueprint.get("/rapport")
def page():
    """The report inside the site layout (public: published rows only, no model internals)."""
    report, taxonomy = _current_report()
    settings = current_app.config["SETTINGS"]
    def page_url(initiative_id: str) -> str:
        return url_for("initiative.page", initiative_id=initiative_id)

    return render_template("report_page.html",
                           **report_context(report, taxonomy, settings.report, page_url=page_url))


@blueprint.get("/rapport/download")
def download():
    """The same report as one standalone HTML file, to save, mail or print."""
    report, taxonomy = _current_report()
    html = render_report_html(report, taxonomy, current_app.config["SETTINGS"].report)
    return Response(html, mimetype="text/html",
                    headers={"Content-Disposition": 'attachment; filename="rapport.html"'})


@blueprint.get("/rapport/catalogus.xlsx")
def download_xlsx():
    """The whole catalogue as the Excel sheet `pipeline export --format xlsx` writes (Dutch
    columns, text never a formula), rebuilt only when the catalogue changed."""
    settings = current_app.config["SETTINGS"]
    cache = current_app.extensions.setdefault("pipeline.xlsx", {"lock": threading.Lock()})
    conn = get_db()
    signature = catalogue_signature(conn)
    with cache["lock"]:
        if cache.get("signature") != signature:
            records = export.export_records(conn, get_taxonomy(), separator=settings.export.list_separator)
            cache.update(signature=signature, body=export.xlsx_bytes(
                records, sheet_name=settings.export.sheet_name))
        body = cache["body"]
    return Response(body, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="catalogus.xlsx"'})
