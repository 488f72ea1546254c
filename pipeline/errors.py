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
