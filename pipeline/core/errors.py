"""Every error the pipeline raises for the user, in one place.

Messages name the value that is wrong, what would be right, and what to do. The CLI turns these
exceptions into a clean message at the edge (`fout [CODE]: ...`); library code raises them. Each
class has a stable `code` that scripts, logs and the README can refer to; `ERROR_CODES` lists them
all (tests/test_errors.py keeps the codes unique and every `PipelineError` in the package here).
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: a problem the user can fix (bad file, bad setting, missing model)."""

    code = "PIPELINE"


class ConfigError(PipelineError, ValueError):
    """A configuration file is missing, is not valid TOML, or has a wrong key or value."""

    code = "CONFIG"


class InputFileError(PipelineError, ValueError):
    """A whole input file cannot be read as what it claims to be (not JSONL, not CSV, ...)."""

    code = "INPUT_FILE"


class ModelNotFoundError(PipelineError, FileNotFoundError):
    """No trained model where one was expected."""

    code = "MODEL_NOT_FOUND"


class EncoderError(PipelineError, RuntimeError):
    """The configured encoder cannot be built or loaded."""

    code = "ENCODER"


class TrainingDataError(PipelineError, ValueError):
    """No usable labelled rows (missing folder, no files, or every row invalid)."""

    code = "TRAINING_DATA"


class UnknownIdError(PipelineError, KeyError):
    """An id that is not among the rows of the index."""

    code = "UNKNOWN_ID"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreError(PipelineError):
    """The catalogue file cannot be opened or is newer than this program."""

    code = "STORE"


class ReviewError(PipelineError, ValueError):
    """A reviewer account or a review that cannot be stored as given (Dutch message)."""

    code = "REVIEW"


class SearchError(PipelineError, ValueError):
    """A search request that cannot be answered as asked (unknown label id, bad score)."""

    code = "SEARCH"


class ReportError(PipelineError, ValueError):
    """The report cannot be made as asked (no catalogue)."""

    code = "REPORT"


ERROR_CODES = {cls.code: cls for cls in (
    PipelineError, ConfigError, InputFileError, ModelNotFoundError, EncoderError,
    TrainingDataError, UnknownIdError, StoreError, ReviewError, SearchError, ReportError)}


def user_message(exc: PipelineError) -> str:
    """How the CLI shows an error: its stable code, then the message."""
    return f"[{exc.code}] {exc}"


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
# A warning about an accepted row: its municipality value was read as a misspelt or old name, or
# is no municipality at all (a region, "Diverse gemeenten"). The row is stored.
ROW_PLACE_WARNING = "rij {row} (id {id}): {warning}"

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
ROW_BAD_CHARACTER = (
    "ongeldig teken {char} op positie {position} ({what}); verwijder het en stuur de rij opnieuw / "
    "invalid character {char} at position {position}"
)
ROW_BAD_ID = (
    "id mag geen {what} bevatten (het id moet in een webadres passen) / id must not contain {what}"
)
ROW_TOO_DEEP = "veld is meer dan {limit} lagen diep genest / field nested more than {limit} levels"
ROW_NOT_FINITE = "getal is oneindig of geen getal (NaN/Infinity) / number is not finite"
ROW_UNREADABLE = (
    "rij kon niet worden gelezen ({error}); de rest van het bestand is wel verwerkt / "
    "row could not be read ({error})"
)
ROW_MODEL_FAILED = (
    "het model kon deze rij niet verwerken ({error}); de rest van het bestand is wel verwerkt / "
    "the model could not process this row ({error})"
)
FILE_UNEXPECTED = (
    "{path}: het bestand kon niet worden gelezen (onverwachte fout {error}); controleer of het "
    "JSONL of CSV is en stuur het opnieuw. / The file could not be read (unexpected {error})."
)
