"""Every error the pipeline raises for the user, in one place.

Messages name the value that is wrong, what would be right, and what to do. The CLI turns these
exceptions into a clean message at the edge; library code raises them.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: a problem the user can fix (bad file, bad setting, missing model)."""


class ConfigError(PipelineError, ValueError):
    """A configuration file is missing, is not valid TOML, or has a wrong key or value."""


class InputFileError(PipelineError, ValueError):
    """A whole input file cannot be read as what it claims to be (not JSONL, not CSV, ...)."""


class ModelNotFoundError(PipelineError, FileNotFoundError):
    """No trained model where one was expected."""


class EncoderError(PipelineError, RuntimeError):
    """The configured encoder cannot be built or loaded."""


# Row-level messages for ingest. Each is formatted with the row's context and goes into the
# rejected-rows file; the row is skipped and the batch goes on.
ROW_MISSING_FIELD = "verplicht veld ontbreekt / required field is missing"
ROW_EMPTY_FIELD = "verplicht veld is leeg / required field is empty"
ROW_WRONG_TYPE = "veld heeft het verkeerde type (verwacht {expected}, kreeg {got}) / wrong type"
ROW_TOO_LONG = "tekst te lang ({length} tekens, max {limit}) / text too long"
ROW_DUPLICATE_ID = "id komt al voor in rij {first_row} / duplicate id, first seen in row {first_row}"
ROW_BROKEN_JSON = "geen geldige JSON: {error} / broken JSON"
ROW_NOT_OBJECT = "regel is geen JSON-object maar {got} / line is not a JSON object"
ROW_EXTRA_CELLS = "rij heeft {got} cellen, kop heeft er {expected} / row has more cells than the header"
ROW_NO_TEXT = (
    "bevat alleen links/tekens (URL's, e-mailadressen, opsommingstekens), geen tekst om te lezen / "
    "contains only links or symbols, no text to read"
)
ROW_BROKEN_CSV = "geen geldige CSV-rij (regel {line}): {error} / broken CSV row"
ROW_UNCLOSED_QUOTE = (
    "aanhalingsteken wordt niet gesloten: regels {first}-{last} zijn daardoor als één cel gelezen "
    "en niet gebruikt; sluit het aanhalingsteken en stuur het opnieuw / unclosed quote swallows "
    "lines {first}-{last}"
)

# File-level messages for ingest: formatted with the path, raised as InputFileError or (when the
# rows can still be read) reported as a warning beside the result.
FILE_REPEATED_COLUMNS = (
    "{path}: de kop noemt kolom(men) {names} meer dan eens; elke kolom moet een eigen naam hebben. / "
    "Repeated column names in the header: {names}."
)
FILE_MIXED_ENCODING = (
    "{path}: regel(s) {lines} zijn geen UTF-8 en zijn als Windows-1252 gelezen (de rest als UTF-8); "
    "controleer de tekens daar. / Lines {lines} are not UTF-8; read as Windows-1252."
)
FILE_UNKNOWN_ENCODING = (
    "{path}: regel {line} is geen UTF-8 en geen Windows-1252. / Line {line}: unknown text encoding."
)
FILE_NO_ROWS = (
    "{path}: het bestand heeft geen rijen (alleen een kop?) / the file has no rows (header only?)"
)
