"""The report for policy staff: what the catalogue says, in Dutch, readable in ten minutes.

`build_report(records, groups, taxonomy, config)` is the pure core: it counts and selects, and every
figure carries the ids of the catalogue rows behind it, so the rendered page can link each count to
its rows (appendix anchors `#rij-<id>`). `render_charts(report)` draws the charts with matplotlib as
PNG data URIs (the HTML file can be mailed as one file). `render_report_html(...)` fills the
standalone template; the web page /rapport shows the same body inside the site layout.

Input records are the published catalogue rows as described in `pipeline.catalogue.records` (id, gemeente,
gemeenten, naam, omschrijving, themes, doelgroepen, kind, replicability, reasons, group_gemeenten);
groups are dicts {"id", "label" (optional), "members": [initiative ids]}. Municipalities are
the CBS codes resolved at ingest (`pipeline.core.municipalities`; `records.places` gives their
names): a joint submission counts once for each municipality it names, a region or "Diverse
gemeenten" for none. The coverage section counts them against the reference list's 342
municipalities and 12 provinces.
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from pipeline.catalogue import schema
from pipeline.catalogue.readmodel import KIND_NAMES
from pipeline.catalogue.records import catalogue_groups, catalogue_records, places, with_places
from pipeline.catalogue.records import excerpt as _excerpt
from pipeline.core.config import load_taxonomy
from pipeline.core.errors import ReportError
from pipeline.app.context import format_time
from pipeline.app.coverage import Count, Coverage, coverage_of
from pipeline.core.municipalities import Reference, default_reference, reference_from_settings
from pipeline.models.facts import fact_sheet, sentences

SIGNAL = "signal"
INITIATIVE = "initiative"


@dataclass
class Report:
    """Everything the report shows; each count lists its row ids."""

    generated_at: str
    total: Count
    initiatives: Count
    signals: Count
    gemeenten: list[Count]                 # every municipality, most rows first (joint rows
                                           # count for each of their places)
    gemeenten_once: list[Count]            # municipalities with exactly one row
    themes: list[Count]                    # taxonomy order
    doelgroepen: list[Count]
    heatmap: list[list[Count]]             # [theme][doelgroep]
    examples: list[tuple[Count, list[dict]]]   # per theme: the easy-to-organise examples
    ideas: list[dict]                      # same-idea groups, most municipalities first
    ideas_by_theme: list[tuple[Count, list[dict]]]   # the same per main theme (taxonomy order)
    signals_by_theme: list[tuple[Count, list[dict]]]
    unlabelled: Count                      # rows without any theme (not yet classified)
    records: list[dict]                    # the appendix, sorted by municipality and id
    joint: Count = field(default_factory=lambda: Count(key="joint", label=""))  # > 1 place each
    coverage: Coverage | None = None
    # What each example does, for the examples only: id -> {"wat": [verbatim spans], "hoe": [...]}.
    example_facts: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # What each signal asks, in whole sentences of its text: id -> quote (`signal_quote`).
    signal_quotes: dict[str, str] = field(default_factory=dict)
    charts: dict[str, str] = field(default_factory=dict)

    @property
    def n_gemeenten(self) -> int:
        return len(self.gemeenten)


def _sort_key(record: dict):
    return (", ".join(places(record)).casefold(), record["id"])


def main_theme(record: dict) -> str | None:
    """The theme a record is mainly about: of its themes in force, the one the model gave the
    highest probability (`label_scores`), the first listed on a tie or without scores."""
    themes = list(record.get("themes") or ())
    if not themes:
        return None
    scores = (record.get("label_scores") or {}).get("themes") or {}
    return max(themes, key=lambda t: (scores.get(t, float("-inf")), -themes.index(t)))


def example_reasons(record: dict) -> list[dict]:
    """A record's reasons as an example shows them: what makes it easy ("+") first, then the
    rest, each group in the scorer's order (strongest first)."""
    reasons = list(record.get("reasons") or ())
    return ([r for r in reasons if r.get("richting") == "+"]
            + [r for r in reasons if r.get("richting") != "+"])


def leads_with_positive(record: dict) -> bool:
    """True when the record may stand as an easy-to-organise example on its reasons: its strongest
    reason says what makes it easy. A reviewer's score needs no reason of the model's (the
    reviewer decided; the model's reasons may even be replaced by the reviewer's note)."""
    if record.get("review_status") == "review":
        return True
    reasons = record.get("reasons") or ()
    return bool(reasons) and reasons[0].get("richting") == "+"


def is_easy_example(record: dict, min_replicability: int) -> bool:
    """An initiative (not a signal) scored at least `min_replicability` whose reasons lead with
    a positive one (`leads_with_positive`)."""
    return (record.get("kind") == INITIATIVE
            and (record.get("replicability") or 0) >= min_replicability
            and leads_with_positive(record))


def pick_examples(records: list[dict], theme: str, *, min_replicability: int, per_theme: int,
                  per_gemeente: int, ideas_taken: set | None = None) -> list[dict]:
    """The best easy-to-organise initiatives whose main theme (`main_theme`) is `theme`, spread
    over municipalities.

    Takes easy examples (`is_easy_example`), best score first; among equal scores, ideas already
    found in more other municipalities first (proven elsewhere), then by id for a stable order.
    At most `per_gemeente` per municipality, one per same-idea group (the others are named under
    "ook in"), `per_theme` in all; a joint submission counts for each of its places. A record is
    only a candidate under its main theme, so across themes it appears once; `ideas_taken` (the
    groups already shown under other themes, updated here) keeps a same-idea group to one
    example in the whole report.
    """
    ideas = ideas_taken if ideas_taken is not None else set()
    candidates = [
        r for r in records
        if main_theme(r) == theme and is_easy_example(r, min_replicability)
    ]
    candidates.sort(key=lambda r: (-(r.get("replicability") or 0),
                                   -len(r.get("group_gemeenten") or ()), r["id"]))
    chosen, per_place = [], Counter()
    for record in candidates:
        own = {g.casefold() for g in places(record)} or {""}
        group = record.get("group_id")
        if any(per_place[g] >= per_gemeente for g in own) or (group is not None and group in ideas):
            continue
        per_place.update(own)
        if group is not None:
            ideas.add(group)
        chosen.append(record)
        if len(chosen) >= per_theme:
            break
    return chosen


def signal_quote(text: str, request_words, limit: int) -> str:
    """The sentences of a signal that carry its ask, verbatim and whole, about `limit` characters.

    A sentence that names one of `request_words` (regular expressions, whole lower-case words:
    "rijk", "zou", "nodig" ...) goes first, then the sentences nearest to one, kept in text order;
    "…" marks what was left out. A first sentence longer than twice `limit` is cut at a word.
    """
    spans = sentences(text)
    if not spans:
        return ""
    plain = [" ".join(s.text.split()) for s in spans]
    pattern = re.compile(r"\b(?:" + "|".join(request_words) + r")\b", re.IGNORECASE)
    asks = [i for i, sentence in enumerate(plain) if pattern.search(sentence)]
    # "... zou kunnen helpen:" announces the asks: the items after it are asks too.
    asks += [i + 1 for i in asks if plain[i].endswith(":") and i + 1 < len(plain)]
    asks = sorted(set(asks)) or [0]
    order = sorted(range(len(plain)), key=lambda i: (min(abs(i - a) for a in asks), i))
    chosen, used = [], 0
    for i in order:
        if chosen and used + len(plain[i]) > limit:
            continue   # a shorter sentence further on may still fit
        chosen.append(i)
        used += len(plain[i]) + 1
    chosen.sort()
    if len(chosen) == 1 and len(plain[chosen[0]]) > 2 * limit:
        plain[chosen[0]] = _excerpt(plain[chosen[0]], 2 * limit)
    quote = "… " if chosen[0] > 0 else ""
    for previous, i in zip([None] + chosen, chosen):
        if previous is not None:
            quote += " " if i == previous + 1 else " … "
        quote += plain[i]
    return quote + (" …" if chosen[-1] < len(plain) - 1 else "")


def build_report(records: list[dict], groups: list[dict], taxonomy, config,
                 *, now: datetime | None = None, reference: Reference | None = None,
                 display_timezone: str | None = None) -> Report:
    """Count and select everything the report shows from published `records` and `groups`.

    Takes the records (see module docstring), the same-idea groups, the `Taxonomy` and a
    `ReportConfig`; `reference` is the municipality list (None: the configured one) for records
    without resolved municipalities and for the coverage; `display_timezone` ([serve]
    display_timezone) the zone of the "Gemaakt op" time, as the web pages show times (None: UTC). Returns a `Report`; a group member
    missing from `records` (e.g. rejected later) is left out of that group's municipality count
    rather than failing the report.
    """
    reference = reference or default_reference()
    records = sorted((with_places(r, reference) for r in records), key=_sort_key)
    by_id = {r["id"]: r for r in records}
    ids = [r["id"] for r in records]
    now = now or datetime.now(timezone.utc)

    # Municipalities resolved to CBS codes only: a region or "Diverse gemeenten" is no municipality
    # (coverage.unplaced counts those rows).
    per_place: dict[str, list[str]] = defaultdict(list)
    for r in records:
        for place in places(r):
            per_place[place].append(r["id"])
    gemeenten = [Count(key=g, label=g, ids=v) for g, v in per_place.items()]
    gemeenten.sort(key=lambda c: (-c.n, c.label.casefold()))

    def label_counts(field_name: str) -> list[Count]:
        return [
            Count(key=label.id, label=label.naam,
                  ids=[r["id"] for r in records if label.id in (r.get(field_name) or ())])
            for label in getattr(taxonomy, field_name)
        ]

    heatmap = [
        [
            Count(key=f"{theme.id}|{group.id}", label=f"{theme.naam} × {group.naam}",
                  ids=[r["id"] for r in records
                       if theme.id in (r.get("themes") or ()) and group.id in (r.get("doelgroepen") or ())])
            for group in taxonomy.doelgroepen
        ]
        for theme in taxonomy.themes
    ]

    themes = label_counts("themes")
    examples, ideas_taken = [], set()
    for count in themes:
        chosen = pick_examples(records, count.key, min_replicability=config.example_min_replicability,
                               per_theme=config.examples_per_theme,
                               per_gemeente=config.examples_per_gemeente_per_theme,
                               ideas_taken=ideas_taken)
        eligible = [r["id"] for r in records if main_theme(r) == count.key
                    and is_easy_example(r, config.example_min_replicability)]
        examples.append((Count(key=count.key, label=count.label, ids=eligible), chosen))

    ideas = []
    for group in groups:
        members = [by_id[m] for m in group.get("members") or () if m in by_id]
        where = sorted({g for m in members for g in places(m)}, key=str.casefold)
        if len(members) < 2:
            continue
        first = min(members, key=lambda m: m["id"])
        # The member that says it best stands for the idea: the most elements named, then the
        # highest score; its first *wat* span is the idea's one line.
        sheets = {m["id"]: fact_sheet(m.get("omschrijving") or "") for m in members}
        shown = max(sorted(members, key=lambda m: m["id"]),   # max keeps the first of equals
                    key=lambda m: (sheets[m["id"]].named(), m.get("replicability") or 0))
        themes_of = Counter(t for t in map(main_theme, members) if t)
        wat = sheets[shown["id"]].wat
        ideas.append({
            "theme": min(themes_of, key=lambda t: (-themes_of[t], t)) if themes_of else "",
            "shown": shown["id"],
            "wat": wat[0].text if wat else _excerpt(shown.get("omschrijving"), config.title_chars),
            "id": str(group.get("id")),
            "label": group.get("label") or first.get("naam")
            or _excerpt(first.get("omschrijving"), config.title_chars),
            "gemeenten": where,
            "members": sorted(members, key=_sort_key),
            "count": Count(key=str(group.get("id")), label="", ids=[m["id"] for m in members]),
        })
    ideas.sort(key=lambda i: (-len(i["gemeenten"]), -len(i["members"]), i["id"]))
    # Per theme (the main theme most members share), the ideas found in most places.
    ideas_by_theme = []
    for count in themes + [Count(key="", label="Zonder thema")]:
        # An idea "found in places" runs in at least two municipalities.
        found = [i for i in ideas if i["theme"] == count.key and len(i["gemeenten"]) >= 2][: config.top_groups]
        if found:
            ideas_by_theme.append((count, found))
    ideas = ideas[: config.top_groups]

    signal_records = [r for r in records if r.get("kind") == SIGNAL]
    signals_by_theme = []
    for count in themes:
        members = [r for r in signal_records if count.key in (r.get("themes") or ())]
        if members:
            signals_by_theme.append(
                (Count(key=count.key, label=count.label, ids=[r["id"] for r in members]), members)
            )
    no_theme = [r for r in signal_records if not r.get("themes")]
    if no_theme:
        signals_by_theme.append((Count(key="", label="Zonder thema", ids=[r["id"] for r in no_theme]),
                                 no_theme))

    example_facts = {}
    for _, chosen in examples:
        for r in chosen:
            sheet = fact_sheet(r.get("omschrijving") or "")
            example_facts[r["id"]] = {"wat": [s.text for s in sheet.wat], "hoe": [s.text for s in sheet.hoe]}

    return Report(
        generated_at=(format_time(now.isoformat(), display_timezone) if display_timezone
                      else now.strftime("%d-%m-%Y %H:%M UTC")),
        total=Count(key="total", label="Initiatieven en signalen", ids=ids),
        initiatives=Count(key=INITIATIVE, label="Initiatieven",
                          ids=[r["id"] for r in records if r.get("kind") == INITIATIVE]),
        signals=Count(key=SIGNAL, label="Signalen", ids=[r["id"] for r in signal_records]),
        gemeenten=gemeenten,
        gemeenten_once=[c for c in gemeenten if c.n == 1],
        themes=themes,
        doelgroepen=label_counts("doelgroepen"),
        heatmap=heatmap,
        examples=examples,
        ideas=ideas,
        signals_by_theme=signals_by_theme,
        ideas_by_theme=ideas_by_theme,
        unlabelled=Count(key="unlabelled", label="Zonder thema",
                         ids=[r["id"] for r in records if not r.get("themes")]),
        records=records,
        joint=Count(key="joint", label="Gezamenlijke inzendingen",
                    ids=[r["id"] for r in records if len(places(r)) > 1]),
        coverage=coverage_of(records, reference),
        example_facts=example_facts,
        signal_quotes={r["id"]: signal_quote(r.get("omschrijving") or "", config.signal_request_words,
                                             config.signal_chars) for r in signal_records},
    )


def _png(fig, dpi: int) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_charts(report: Report, config) -> dict[str, str]:
    """PNG data URIs: "themes", "doelgroepen", "heatmap", "gemeenten". Returns {} for no rows."""
    if not report.records:
        return {}
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; must precede pyplot
    import matplotlib.pyplot as plt

    # Labels are municipalities' text: "$...$" must be shown as written, never parsed as mathtext
    # (a bad formula would fail the report for everyone).
    with matplotlib.rc_context({"text.parse_math": False}):
        return _draw_charts(report, config, plt)


def _draw_charts(report: Report, config, plt) -> dict[str, str]:
    charts = {}
    colour = "#2b6cb0"

    def bars(counts: list[Count], title: str) -> str:
        counts = sorted(counts, key=lambda c: c.n)
        fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(counts) + 0.9))
        values = [c.n for c in counts]
        ax.barh([c.label for c in counts], values, color=colour)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v}", va="center", fontsize=8)
        ax.set_title(title, loc="left", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
        ax.set_xlim(0, max(values + [1]) * 1.12)
        try:
            return _png(fig, config.chart_dpi)
        finally:
            plt.close(fig)

    if report.coverage is not None:
        charts["provincies"] = coverage_chart(report.coverage, config, plt)
    charts["themes"] = bars(report.themes, "Aantal per thema")
    charts["doelgroepen"] = bars(report.doelgroepen, "Aantal per doelgroep")
    top = report.gemeenten[: config.top_gemeenten]
    charts["gemeenten"] = bars(top, f"Gemeenten met de meeste inzendingen (top {len(top)})")

    matrix = np.array([[cell.n for cell in row] for row in report.heatmap])
    fig, ax = plt.subplots(figsize=(9, 6.5))
    image = ax.imshow(matrix, cmap="Blues", aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), [c.label for c in report.doelgroepen], rotation=55,
                  ha="right", fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), [c.label for c in report.themes], fontsize=7)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (y, x), value in np.ndenumerate(matrix):
        if value:
            ax.text(x, y, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > threshold else "black")
    ax.set_title("Thema × doelgroep (aantal initiatieven en signalen)", loc="left", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.6)
    try:
        charts["heatmap"] = _png(fig, config.chart_dpi)
    finally:
        plt.close(fig)
    return charts


def coverage_chart(coverage: Coverage, config, plt) -> str:
    """Per province: its municipalities (grey) and those the catalogue hears from (blue)."""
    provinces = coverage.provinces[::-1]  # north at the top
    fig, ax = plt.subplots(figsize=(7.5, 0.34 * len(provinces) + 1.1))
    names = [p.provincie for p in provinces]
    ax.barh(names, [p.total for p in provinces], color="#d9dee5", label="gemeenten in de provincie")
    ax.barh(names, [p.n_heard for p in provinces], color="#2b6cb0", label="gemeenten met inzendingen")
    for y, p in enumerate(provinces):
        ax.text(p.total, y, f" {p.n_heard} van {p.total}", va="center", fontsize=8)
    ax.set_title(f"Van hoeveel gemeenten per provincie horen we? ({coverage.n_heard} van "
                 f"{coverage.n_municipalities})", loc="left", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    ax.set_xlim(0, max([p.total for p in provinces] + [1]) * 1.2)
    ax.legend(fontsize=7, loc="lower right", frameon=False)
    try:
        return _png(fig, config.chart_dpi)
    finally:
        plt.close(fig)


def _jinja_env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("pipeline.app", "templates"),
                       autoescape=select_autoescape(["html"]))


def report_context(report: Report, taxonomy, config, page_url=None) -> dict:
    """What the report templates need: the report, label names and the reasons shown per example.

    `page_url(id)` is where an example links to: the web page passes the page per initiative;
    the standalone file (mailed, no server) links to its own appendix (`#rij-<id>`).
    """
    return {
        "report": report,
        "theme_name": lambda t: taxonomy.name("themes", t),
        "doelgroep_name": lambda d: taxonomy.name("doelgroepen", d),
        "kind_names": {kind: name.lower() for kind, name in KIND_NAMES.items()},
        "excerpt": _excerpt,
        "places": places,
        "score_max": max(taxonomy.replicability),
        "config": config,
        "example_reasons": example_reasons,
        "page_url": page_url,
    }


def render_report_html(report: Report, taxonomy, config) -> str:
    """The standalone report: one HTML file with the charts inside, ready to mail or print."""
    if not report.charts:
        report.charts = render_charts(report, config)
    return _jinja_env().get_template("report_standalone.html").render(
        **report_context(report, taxonomy, config)
    )


def write_report(path, records: list[dict], groups: list[dict], taxonomy, config,
                 *, reference: Reference | None = None, display_timezone: str | None = None) -> Report:
    """Build the report and write it as one HTML file at `path`. Returns the Report."""
    from pathlib import Path

    report = build_report(records, groups, taxonomy, config, reference=reference,
                          display_timezone=display_timezone)
    html = render_report_html(report, taxonomy, config)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return report


def report_from_catalogue(settings, out_path, *, db_path=None) -> Report:
    """Write the report on the catalogue at `db_path` (default: [store] path) to `out_path`.

    Raises ReportError when the catalogue file does not exist (a report on nothing helps nobody).
    """
    from pathlib import Path


    db_path = Path(db_path or settings.store.path)
    if not db_path.exists():
        raise ReportError(f"catalogus niet gevonden / catalogue not found: {db_path}; "
                          f"vul hem met `pipeline run --inbox DIR` of geef --db PATH")
    conn = schema.connect_from_config(settings.store, db_path)
    try:
        reference = reference_from_settings(settings)
        records, groups = catalogue_records(conn, reference), catalogue_groups(conn)
    finally:
        conn.close()
    return write_report(out_path, records, groups, load_taxonomy(settings.paths.taxonomy),
                        settings.report, reference=reference,
                        display_timezone=settings.serve.display_timezone)



