"""The scheduled job behind `pipeline run --inbox DIR`: new files in, catalogue rows out.

For each new file in the inbox (JSONL or CSV as `pipeline.ingest` reads them), in name order:

0. skip it (left for a later run, nothing recorded) while it may still be arriving: modified less
   than `[run] settle_seconds` ago, or empty (an upload that has not written anything yet).
1. hash its bytes (SHA-256). A hash the catalogue already has adds nothing: the file is only
   moved on (to processed/, or to rejected/ when it was unreadable) with a log line.
2. read and validate it. A file that cannot be read at all is recorded as a rejected submission
   and moved to `DIR/rejected/` with a Dutch + English error report beside it (`NAME.fout.txt`),
   unless it changed meanwhile (then it was half uploaded: left for the next run).
3. classify and score the good rows (`Predictor.predict`).
4. store the submission, its rows (a new version of its id unless identical to the current
   one), their predictions and the rejected rows with their messages in ONE transaction
   (`writes.store_submission`). Just before COMMIT the file is hashed again: if it changed
   (it grew while the models ran), the transaction is rolled back and the file waits.
5. hash again and move the file to `DIR/processed/`; if it changed after the commit it stays
   in the inbox, and the next run stores the whole new content (its unchanged rows add nothing).

After the files, the groups are brought up to date when the catalogue has rows they were not
built from: new rows join stored groups or form new ones (`pipeline.jobs.regroup`).

Crash safety: the commit in step 4 records the file's hash, and the file is moved only after the
commit. Killed before the commit, nothing of the file is stored and the file is still in the inbox:
the next run does it again. Killed after the commit, the next run finds the hash and only moves the
file. Regrouping compares the catalogue's highest initiative pk with the one the groups were built
from, so an interrupted regroup is redone by the next run. A file lock in the inbox keeps two runs
from overlapping: the second one says so and returns at once.

Files whose names start with "." or end in one of `[run] ignore_suffixes` are not touched:
uploaders write under such a name and rename when the copy is complete.

`checkpoint(point, file_name)`, when given, is called at each of `CHECKPOINTS`: "after_predict"
(rows predicted, nothing stored yet), "before_commit" (inside a file's transaction, after its rows
are written) and "after_commit" (before the file is moved). A progress display can follow a run
with it; the crash tests (tests/run_paused.py) pause there and kill the job.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import filelock

from pipeline.catalogue import idea_links
from pipeline.catalogue import readmodel
from pipeline.catalogue import schema
from pipeline.catalogue import writes
from pipeline.core.config import IngestConfig
from pipeline.core import errors
from pipeline.core.records import Problem, RejectedRow
from pipeline.core.errors import InputFileError, PipelineError
from pipeline.ingest.reader import read_initiatives
from pipeline.jobs.regroup import regroup
from pipeline.jobs.files import (
    NotAFile,
    check_lock_path,
    file_sha256,
    inbox_folder,
    links_in,
    move_to,
    pending_files,
    read_file,
    shown_name,
    target_in,
    write_beside,
)

log = logging.getLogger("pipeline.run")

PROCESSED_DIR = "processed"
REJECTED_DIR = "rejected"
REPORT_SUFFIX = ".fout.txt"
CHECKPOINTS = ("after_predict", "before_commit", "after_commit")
# The stages the per-run timing breakdown reports, in pipeline order.
STAGES = ("read", "load", "embed", "predict", "database", "group", "move")
_NOT_MADE = object()

# Outcomes of one file.
STORED = "stored"            # new rows (and/or rejected rows) stored, file moved to processed/
DUPLICATE = "duplicate"      # content already in the catalogue: nothing added, file moved on
REJECTED = "rejected"        # file unreadable: recorded, moved to rejected/ with a report
FAILED = "failed"            # unexpected error: nothing stored, file left in the inbox
SKIPPED = "skipped"          # still arriving (new, empty or changing): left for the next run


@dataclass
class FileOutcome:
    name: str
    status: str
    sha256: str = ""
    accepted: int = 0
    rejected_rows: int = 0
    new_versions: int = 0
    unchanged: int = 0
    message: str = ""


@dataclass
class RunReport:
    """What one run did: per file outcome, regrouping, and seconds per stage."""

    inbox: Path
    files: list[FileOutcome] = field(default_factory=list)
    busy: bool = False
    regrouped: bool = False
    groups: int | None = None
    model_id: str | None = None
    timings: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    # CPU seconds (all threads of this process) per stage: steadier than wall-clock seconds on a
    # machine shared with other work.
    cpu_timings: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def initiatives(self) -> int:
        return sum(f.accepted for f in self.files if f.status == STORED)

    @property
    def ok(self) -> bool:
        return self.count(FAILED) == 0

    def timing_line(self) -> str:
        return ", ".join(f"{stage} {self.timings.get(stage, 0.0):.2f}" for stage in STAGES)

    def summary(self) -> str:
        """The one line `pipeline run` prints."""
        if self.busy:
            return f"pipeline run: another run is busy with {self.inbox}; nothing done"
        if not self.files and not self.regrouped:
            return f"pipeline run: no new files in {self.inbox} in {self.seconds:.1f}s"
        parts = [
            f"{len(self.files)} file(s)",
            f"{self.count(STORED)} stored",
            f"{self.count(DUPLICATE)} already known",
            f"{self.count(REJECTED)} unreadable",
        ]
        if self.count(SKIPPED):
            parts.append(f"{self.count(SKIPPED)} still arriving (left for the next run)")
        if self.count(FAILED):
            parts.append(f"{self.count(FAILED)} FAILED (left in inbox, see log)")
        rows = sum(f.accepted for f in self.files)
        bad = sum(f.rejected_rows for f in self.files)
        versions = sum(f.new_versions for f in self.files)
        unchanged = sum(f.unchanged for f in self.files)
        parts.append(f"{rows} initiative(s) added ({versions} new version(s)), {unchanged} unchanged, "
                     f"{bad} row(s) rejected")
        if self.regrouped:
            parts.append(f"regrouped: {self.groups} group(s)")
        return f"pipeline run: {', '.join(parts)} in {self.seconds:.1f}s"


class StageTimer:
    """Adds up wall-clock and CPU seconds per stage into two dicts."""

    def __init__(self, timings: dict[str, float], cpu_timings: dict[str, float] | None = None):
        self.timings = timings
        self.cpu_timings = {} if cpu_timings is None else cpu_timings

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start
            self.cpu_timings[stage] = (
                self.cpu_timings.get(stage, 0.0) + time.process_time() - cpu_start
            )


def error_report(file_name: str, sha256: str, received_at: str, error: str) -> str:
    """The Dutch + English report written beside an unreadable file in rejected/."""
    return (
        f"Bestand / File: {file_name}\n"
        f"Ontvangen / Received: {received_at}\n"
        f"SHA-256: {sha256}\n"
        "\n"
        "NEDERLANDS\n"
        "Dit bestand kon niet worden gelezen; er is niets uit opgenomen in de catalogus.\n"
        f"Reden: {error}\n"
        "Wat nu: sla het bestand op als JSONL of als CSV (UTF-8) met de kolommen id, gemeente en\n"
        "omschrijving, en stuur het opnieuw.\n"
        "\n"
        "ENGLISH\n"
        "This file could not be read; nothing from it was added to the catalogue.\n"
        f"Reason: {error}\n"
        "What to do: save the file as JSONL or as CSV (UTF-8) with the columns id, gemeente and\n"
        "omschrijving, and send it again.\n"
    )


def predict_per_row(predictor, result) -> list[dict]:
    """The predictions for `result.accepted`, in order. When the batch fails (a text one of the
    models cannot take), each row is predicted alone: a row that still fails moves to
    `result.rejected` with the reason, so one row never stops its file."""
    try:
        return predictor.predict(result.accepted)
    except PipelineError:
        raise
    except Exception:  # noqa: BLE001 - find the row(s), below
        log.exception("predicting a batch failed; predicting its rows one by one")
    kept, predictions = [], []
    for initiative in result.accepted:
        try:
            (prediction,) = predictor.predict([initiative])
        except PipelineError:
            raise
        except Exception as exc:  # noqa: BLE001
            problem = Problem("(model)", errors.ROW_MODEL_FAILED.format(error=type(exc).__name__))
            result.rejected.append(RejectedRow(initiative.row, initiative.id, (problem,), initiative.to_dict()))
            continue
        kept.append(initiative)
        predictions.append(prediction)
    result.accepted[:] = kept
    result.rejected.sort(key=lambda r: r.row)
    return predictions


class FileChanged(Exception):
    """The file's bytes differ from the hash the run started with (it is still arriving)."""


class InboxJob:
    """One run over an inbox. The predictor and grouper are made lazily by the factories, so a
    run with nothing new never loads a model.

    predictor_factory() -> object with `model_id` and `predict(initiatives) -> list[dict]`;
    grouper_factory() -> a `GraphGrouper` (incremental) or `Grouper` (or None to skip grouping);
    embedder_factory() -> (encoder, text function) used to embed rows before prediction so the
    breakdown can tell embedding from classification (the predictor then hits the cache), or None.
    """

    def __init__(self, inbox: Path, conn: sqlite3.Connection, *, predictor_factory: Callable,
                 grouper_factory: Callable | None = None, embedder_factory: Callable | None = None,
                 ignore_suffixes=(), limits: IngestConfig | None = None,
                 settle_seconds: float = 0.0, checkpoint: Callable[[str, str], None] | None = None):
        self.inbox = Path(inbox)
        self.checkpoint = checkpoint
        self.settle_seconds = settle_seconds
        self.conn = conn
        self.predictor_factory = predictor_factory
        self.grouper_factory = grouper_factory
        self.embedder_factory = embedder_factory
        self.ignore_suffixes = tuple(ignore_suffixes)
        self.limits = limits
        self._predictor = None
        self._embedder = _NOT_MADE

    def _checkpoint(self, point: str, name: str) -> None:
        if self.checkpoint is not None:
            self.checkpoint(point, name)

    @property
    def predictor(self):
        if self._predictor is None:
            self._predictor = self.predictor_factory()
        return self._predictor

    def run(self, report: RunReport) -> RunReport:
        timer = StageTimer(report.timings, report.cpu_timings)
        for link in links_in(self.inbox):
            log.warning("%s: is a link; links are never followed, left alone", shown_name(link.name))
        for path in pending_files(self.inbox, self.ignore_suffixes):
            try:
                outcome = self.process_file(path, timer)
            except PipelineError:
                # No model, a bad setting, an encoder that cannot load: every file would fail
                # alike, so stop with the message; the files wait in the inbox.
                raise
            except Exception as exc:  # one broken file must not stop the others
                log.exception("%s: failed, left in the inbox for the next run", shown_name(path.name))
                outcome = FileOutcome(shown_name(path.name), FAILED, message=f"{type(exc).__name__}: {exc}")
            report.files.append(outcome)
        report.model_id = self._predictor.model_id if self._predictor is not None else None
        if self.grouper_factory is not None:
            try:
                with timer("group"):
                    report.groups = self.regroup_if_needed()
                report.regrouped = report.groups is not None
            except Exception as exc:
                log.exception("regrouping failed; the next run tries again")
                report.files.append(FileOutcome("(regroup)", FAILED, message=str(exc)))
        return report

    def still_arriving(self, path: Path) -> str | None:
        """Why `path` must wait for a later run (recent or empty), or None when it can be read.
        Nothing is recorded for such a file: recording an empty file's hash would mark every later
        empty upload as already known, and a half upload would be rejected for good."""
        info = path.lstat()
        age = time.time() - info.st_mtime
        if age < self.settle_seconds:
            return f"modified {age:.0f}s ago (settle_seconds {self.settle_seconds:g})"
        if info.st_size == 0:
            return "empty"
        return None

    def _check_unchanged(self, path: Path, sha: str) -> None:
        if file_sha256(path) != sha:
            raise FileChanged(path.name)

    def process_file(self, path: Path, timer: StageTimer) -> FileOutcome:
        name = shown_name(path.name)
        waiting = self.still_arriving(path)
        if waiting:
            log.info("%s: %s; left in the inbox for the next run", name, waiting)
            return FileOutcome(name, SKIPPED, message=waiting)
        with timer("read"):
            sha = file_sha256(path)
        known = writes.submission_by_hash(self.conn, sha)
        if known is not None:
            return self._finish_known(path, sha, known, timer)
        try:
            with timer("read"):
                result = read_initiatives(self.inbox / name, limits=self.limits, data=read_file(path))
        except NotAFile:
            return FileOutcome(name, SKIPPED, message="no longer a regular file")
        except (InputFileError, Exception) as exc:
            if not isinstance(exc, InputFileError):
                # The content made the reader fail in a way it does not know yet: the sender
                # still gets a report and the file does not block every later run.
                log.exception("%s: unexpected error while reading", name)
                exc = InputFileError(errors.FILE_UNEXPECTED.format(path=name, error=type(exc).__name__))
            if file_sha256(path) != sha:
                return self._changed(name, sha)
            with timer("database"):
                writes.store_rejected_file(self.conn, file_name=name, sha256=sha, error=str(exc))
            known = writes.submission_by_hash(self.conn, sha)
            self._checkpoint("after_commit", name)
            self._finish_known(path, sha, known, timer, quiet=True)
            log.warning("%s: unreadable, moved to %s/: %s", name, REJECTED_DIR, exc)
            return FileOutcome(name, REJECTED, sha, message=str(exc))
        with timer("read"):
            changed = file_sha256(path) != sha
        if changed:
            return self._changed(name, sha)
        for row in result.rejected:
            log.warning("%s", shown_name(row.message(name)))
        predictions = []
        if result.accepted:
            with timer("load"):  # once per run, at the first file with rows
                predictor = self.predictor
                if self._embedder is _NOT_MADE:
                    self._embedder = self.embedder_factory() if self.embedder_factory else None
            if self._embedder is not None:
                with timer("embed"):
                    encoder, text_of = self._embedder
                    try:
                        encoder.embed([text_of(i) for i in result.accepted])
                    except PipelineError:
                        raise
                    except Exception:  # noqa: BLE001 - predict_per_row finds the row
                        log.exception("%s: embedding the batch failed", name)
            with timer("predict"):
                predictions = predict_per_row(predictor, result)
        self._checkpoint("after_predict", name)

        def before_commit():
            self._checkpoint("before_commit", name)
            # Last look inside the transaction: rows added to the file while the models ran
            # were never read, so storing now would mark the grown file as done without them.
            self._check_unchanged(path, sha)

        try:
            with timer("database"):
                counts = writes.store_submission(
                    self.conn, file_name=name, sha256=sha, accepted=result.accepted,
                    rejected=result.rejected, predictions=predictions, before_commit=before_commit,
                )
        except FileChanged:
            return self._changed(name, sha)
        self._checkpoint("after_commit", name)
        log.info(
            "%s: stored as submission %d: %d initiative(s) (%d new version(s)), %d unchanged, "
            "%d rejected row(s)", name, counts.submission_id, counts.initiatives,
            counts.new_versions, counts.unchanged, counts.rejected,
        )
        outcome = FileOutcome(name, STORED, sha, counts.initiatives, counts.rejected,
                              counts.new_versions, counts.unchanged)
        with timer("move"):
            if file_sha256(path) != sha:
                # Changed between the commit and now: what was read is stored; the next run reads
                # the new content whole (rows equal to what is stored add nothing).
                log.warning("%s: changed after it was stored; left in the inbox for the next run",
                            name)
                outcome.message = "changed after it was stored; left in the inbox"
            else:
                move_to(path, inbox_folder(self.inbox, PROCESSED_DIR), sha)
        return outcome

    def _changed(self, name: str, sha: str) -> FileOutcome:
        # Still being written (the sender did not upload under a temporary name): what was read
        # may be half the file. Nothing of it is stored; the next run reads it whole.
        log.warning("%s: changed while being processed; left in the inbox for the next run", name)
        return FileOutcome(name, SKIPPED, sha, message="changed while being processed")

    def _finish_known(self, path: Path, sha: str, known, timer: StageTimer, *, quiet=False) -> FileOutcome:
        """A file whose content the catalogue has: write the report if it was unreadable, move it."""
        with timer("move"):
            if known["status"] == schema.SUBMISSION_REJECTED:
                # Report first, then the move: killed in between, the next run finds the file
                # still in the inbox and writes the report again.
                folder = inbox_folder(self.inbox, REJECTED_DIR)
                target = target_in(folder, path, sha, reserve=REPORT_SUFFIX)
                write_beside(target.with_name(target.name + REPORT_SUFFIX), error_report(
                    known["file_name"], sha, known["received_at"], known["error"] or ""))
                os.replace(path, target)
            else:
                move_to(path, inbox_folder(self.inbox, PROCESSED_DIR), sha)
        if not quiet:
            log.info(
                "%s: same content as submission %d (%s, received %s): nothing added, moved on",
                shown_name(path.name), known["id"], known["file_name"], known["received_at"],
            )
        return FileOutcome(shown_name(path.name), DUPLICATE, sha, message=f"submission {known['id']}")

    def regroup_if_needed(self) -> int | None:
        """Bring the groups up to date when rows were added since the last grouping: new rows
        join the stored groups or form new ones (`pipeline.jobs.regroup`; a full grouping only
        when due). Returns the number of groups stored, or None when they were up to date."""
        latest = readmodel.max_initiative_pk(self.conn)
        marks = idea_links.links_signature(self.conn)  # reviewers' same-idea marks count too
        if str(latest) == (schema.get_state(self.conn, "grouped_max_pk") or "0") \
                and not idea_links.groups_need_links(self.conn):
            return None
        grouper = self.grouper_factory()
        if grouper is None:
            return None
        # New marks since the last grouping change settled groups too: then a full regroup.
        links = idea_links.as_constraints(idea_links.links_in_force(self.conn))
        result = regroup(self.conn, grouper, grouped_max_pk=latest, links=links,
                         full=idea_links.groups_need_links(self.conn))
        idea_links.record_grouped(self.conn, marks)
        return result.groups


def run_inbox(inbox: Path, conn: sqlite3.Connection, *, predictor_factory: Callable,
              grouper_factory: Callable | None = None, embedder_factory: Callable | None = None,
              ignore_suffixes=(), lock_name: str = ".pipeline-run.lock",
              limits: IngestConfig | None = None, settle_seconds: float = 0.0,
              checkpoint: Callable[[str, str], None] | None = None) -> RunReport:
    """Process every new file in `inbox` into the catalogue `conn` (see the module docstring).

    Returns a `RunReport`; `report.busy` is True (and nothing was done) when another run holds
    the inbox lock. Raises `InputFileError` when `inbox` is not a folder.
    """
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise InputFileError(f"{inbox}: inbox-map bestaat niet / inbox folder does not exist")
    report = RunReport(inbox)
    start = time.perf_counter()
    check_lock_path(inbox / lock_name)
    for folder in (PROCESSED_DIR, REJECTED_DIR):  # refuse a linked folder before reading anything
        inbox_folder(inbox, folder, create=False)
    lock = filelock.FileLock(str(inbox / lock_name), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        report.busy = True
        log.info("another run holds %s; this run does nothing", inbox / lock_name)
        return report
    try:
        schema.check_writable(conn)  # a read-only catalogue is said before any model runs
        log.info("run started on %s", inbox)
        InboxJob(
            inbox, conn, predictor_factory=predictor_factory, grouper_factory=grouper_factory,
            embedder_factory=embedder_factory, ignore_suffixes=ignore_suffixes,
            limits=limits, settle_seconds=settle_seconds, checkpoint=checkpoint,
        ).run(report)
    except PipelineError as exc:
        log.error("run stopped, the remaining files wait in the inbox: %s", exc)
        raise
    finally:
        lock.release()
    report.seconds = time.perf_counter() - start
    log.info("%s", report.summary())
    if report.files or report.regrouped:
        log.info("seconds per stage: %s", report.timing_line())
    return report
