"""Settings, read once from the plain commented files in `configs/` into typed dataclasses.

`load_settings()` reads `configs/pipeline.toml` (or the file named by `--config` or the
PIPELINE_CONFIG environment variable); `load_taxonomy()` reads the label taxonomy. Each section
of the TOML file maps to one frozen dataclass below; an unknown key, a missing section or a value of
the wrong type is a `ConfigError` that names the file and the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "pipeline.toml"


@dataclass(frozen=True)
class PathsConfig:
    taxonomy: Path
    labelled: Path
    corpus: Path
    models: Path


@dataclass(frozen=True)
class IngestConfig:
    max_text_chars: int
    max_field_chars: int


@dataclass(frozen=True)
class TextConfig:
    lemmatize: bool


@dataclass(frozen=True)
class EmbedConfig:
    encoder: str
    prefix: str
    model_path: str
    batch_size: int
    cache_path: Path


@dataclass(frozen=True)
class ServeConfig:
    """[serve]: the web app (`pipeline serve`)."""

    host: str
    port: int
    secret_key_file: Path
    session_lifetime_minutes: int
    max_failed_logins: int
    failed_login_window_minutes: int
    secure_cookies: bool
    display_timezone: str


@dataclass(frozen=True)
class ReviewConfig:
    """[review]: the review queue, item page and agreement page."""

    kind_threshold: float
    queue_page_size: int
    similar_k: int
    export_path: Path
    min_password_chars: int
    title_chars: int
    score_hint_chars: int


@dataclass(frozen=True)
class ClassifyConfig:
    embedding_weight: float
    char_weight: float
    char_ngram_min: int
    char_ngram_max: int
    lemma_weight: float
    min_df: int
    C: float
    class_weight: str
    prior_weight: float
    prior_terms: bool
    threshold_folds: int
    threshold_shrinkage: float
    threshold_min: float
    threshold_max: float
    threshold_step: float
    threshold_metric: str = "f1"
    similarity_weight: float = 0.0
    # [classify.kind]: keys of this section that differ for the kind classifier.
    kind: dict = field(default_factory=dict)
    max_labels: int = 0


@dataclass(frozen=True)
class TrainConfig:
    folds: int
    repeats: int
    seed: int
    weak_label_f1: float
    baselines: bool = True


@dataclass(frozen=True)
class SearchConfig:
    """[search]: ranking and display of `pipeline search` and /zoeken."""

    dense_weight: float
    doc_prefix: str
    limit: int
    reasons_shown: int
    title_chars: int
    description_chars: int


@dataclass(frozen=True)
class ReportConfig:
    """[report]: what `pipeline report` and /rapport show."""

    example_min_replicability: int
    examples_per_theme: int
    examples_per_gemeente_per_theme: int
    top_gemeenten: int
    top_groups: int
    chart_dpi: int
    blind_spot_max_rows: int
    summary_top: int
    title_chars: int
    signal_chars: int


@dataclass(frozen=True)
class GroupConfig:
    """[group]: same-idea grouping (`pipeline group`) and nearest neighbours (`pipeline similar`)."""

    text: str
    dense_weight: float
    char_ngram_min: int
    char_ngram_max: int
    hub_neighbours: int
    linkage: str
    threshold: float
    min_similarity: float
    min_size: int
    keywords: int
    name_max_words: int
    neighbours: int


@dataclass(frozen=True)
class StoreConfig:
    """[store]: the catalogue file (`--db` overrides `path`)."""

    path: Path
    busy_timeout_seconds: float
    synchronous: str


@dataclass(frozen=True)
class RunConfig:
    """[run]: the scheduled job `pipeline run` (inbox, lock, log)."""

    inbox: Path
    log_path: Path
    lock_name: str
    ignore_suffixes: tuple[str, ...]
    # Files modified less than this many seconds ago are left for a later run (still arriving).
    settle_seconds: float = 0.0


@dataclass(frozen=True)
class ExportConfig:
    """[export]: `pipeline export` for policy staff."""

    list_separator: str
    sheet_name: str
    csv_delimiter: str


@dataclass(frozen=True)
class ScoreConfig:
    """[score]: the replicability scorer (pipeline/score.py) and its Dutch cue file."""

    cues: Path
    model: str
    C: float
    class_weight: str
    embedding_weight: float
    max_reasons: int
    bewijs_context_tokens: int
    signal_cue: str
    cv_splits: int
    random_state: int


@dataclass(frozen=True)
class Settings:
    """All sections of `configs/pipeline.toml`. `source` is the file they came from."""

    paths: PathsConfig
    ingest: IngestConfig
    text: TextConfig
    embed: EmbedConfig
    classify: ClassifyConfig
    train: TrainConfig
    serve: ServeConfig
    review: ReviewConfig
    search: SearchConfig
    report: ReportConfig
    group: GroupConfig
    store: StoreConfig
    run: RunConfig
    export: ExportConfig
    score: ScoreConfig
    source: Path = field(default=DEFAULT_CONFIG, compare=False)

    @property
    def root(self) -> Path:
        return self.source.resolve().parent.parent


@dataclass(frozen=True)
class Label:
    id: str
    naam: str
    omschrijving: str


@dataclass(frozen=True)
class Taxonomy:
    """The label sets of the labelling guide. `sha256` identifies it in model cards."""

    themes: tuple[Label, ...]
    doelgroepen: tuple[Label, ...]
    kinds: dict[str, str]
    replicability: dict[int, str]
    sha256: str

    def ids(self, field_name: str) -> list[str]:
        return [label.id for label in getattr(self, field_name)]

    def name(self, field_name: str, label_id: str) -> str:
        for label in getattr(self, field_name):
            if label.id == label_id:
                return label.naam
        return label_id


def _coerce(value, annotation, *, where: str):
    """Check `value` against a dataclass field annotation; turn path strings into Paths."""
    if annotation is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a path string, got {value!r}")
        return Path(value)
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        (item_type, *_) = typing.get_args(annotation) or (object,)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        items = [_coerce(v, item_type, where=f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where=where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} has the wrong type: {value!r}")
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return section_from_dict(annotation, value, where=where)
    if isinstance(annotation, type) and annotation is not object:
        if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
            raise ConfigError(
                f"{where} must be of type {annotation.__name__}, got {value!r}"
            )
    return value


def section_from_dict(cls, data, *, where: str):
    """Build dataclass `cls` from a TOML table, naming `where` (file and key) in any error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where} has unknown key(s) {unknown}; valid keys are {sorted(fields)}"
        )
    values = {}
    for name, spec in fields.items():
        if name not in data:
            has_default = (
                spec.default is not dataclasses.MISSING
                or spec.default_factory is not dataclasses.MISSING
            )
            if has_default:
                continue
            raise ConfigError(f"{where} is missing the key {name!r}")
        values[name] = _coerce(data[name], hints[name], where=f"{where}.{name}")
    return cls(**values)


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _resolve_paths(section, root: Path):
    """Make every Path field of a section absolute, relative to the project root."""
    updates = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if isinstance(value, Path) and not value.is_absolute():
            updates[f.name] = root / value
    return dataclasses.replace(section, **updates) if updates else section


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Read `configs/pipeline.toml` (or `path`, or $PIPELINE_CONFIG) into `Settings`."""
    source = Path(path or os.environ.get("PIPELINE_CONFIG") or DEFAULT_CONFIG).resolve()
    data = _read_toml(source)
    root = source.parent.parent
    hints = typing.get_type_hints(Settings)
    sections = {}
    for f in dataclasses.fields(Settings):
        if f.name == "source":
            continue
        if f.name not in data:
            raise ConfigError(f"{source} has no [{f.name}] section")
        section = section_from_dict(hints[f.name], data[f.name], where=f"{source} [{f.name}]")
        sections[f.name] = _resolve_paths(section, root)
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"{source} has unknown section(s) {unknown}")
    return Settings(**sections, source=source)


def load_taxonomy(path: str | os.PathLike) -> Taxonomy:
    """Read the taxonomy file; its SHA-256 goes into every model card."""
    path = Path(path)
    raw = path.read_bytes() if path.exists() else None
    data = _read_toml(path)
    where = str(path)

    def labels(key: str) -> tuple[Label, ...]:
        if key not in data or not data[key]:
            raise ConfigError(f"{where} has no [[{key}]] entries")
        out = tuple(
            section_from_dict(Label, item, where=f"{where} {key}[{i}]")
            for i, item in enumerate(data[key])
        )
        ids = [label.id for label in out]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{where} repeats a label id in {key}: {ids}")
        return out

    try:
        replicability = {int(k): v for k, v in data.get("replicability", {}).items()}
    except ValueError:
        raise ConfigError(f"{where} [replicability] keys must be the scores 1-5") from None
    return Taxonomy(
        themes=labels("themes"),
        doelgroepen=labels("doelgroepen"),
        kinds=dict(data.get("kinds", {})),
        replicability=replicability,
        sha256=hashlib.sha256(raw).hexdigest(),
    )
