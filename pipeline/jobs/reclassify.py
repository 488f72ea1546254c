"""Re-predict the current catalogue rows with another model (`pipeline reclassify`); reviews stay."""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass


from pipeline.catalogue import readmodel
from pipeline.catalogue import schema
from pipeline.catalogue import writes
from pipeline.core.records import as_initiative
import logging

log = logging.getLogger("pipeline.run")


# --- reclassify ------------------------------------------------------------------------------


@dataclass
class ReclassifyReport:
    model_id: str
    predicted: int
    skipped_reviewed: int
    seconds: float

    def summary(self) -> str:
        return (
            f"pipeline reclassify: {self.predicted} initiative(s) re-predicted with {self.model_id}, "
            f"{self.skipped_reviewed} kept because a reviewer confirmed or corrected them, "
            f"in {self.seconds:.1f}s"
        )


def reclassify(conn: sqlite3.Connection, predictor) -> ReclassifyReport:
    """Re-predict current initiatives whose latest prediction came from another model.

    Rows a reviewer confirmed or corrected are left alone (their labels are never overwritten).
    New predictions are added (old ones kept) in one transaction, so a crash leaves everything
    as it was and the next call does the same work again.
    """
    start = time.perf_counter()
    todo, skipped = readmodel.stale_initiatives(conn, predictor.model_id)
    if todo:
        predictions = predictor.predict([as_initiative(r) for r in todo])
        created_at = schema.now()
        with schema.transaction(conn):
            for record, prediction in zip(todo, predictions, strict=True):
                writes.add_prediction(conn, record["pk"], prediction, created_at=created_at)
    report = ReclassifyReport(predictor.model_id, len(todo), skipped, time.perf_counter() - start)
    log.info("%s", report.summary())
    return report
