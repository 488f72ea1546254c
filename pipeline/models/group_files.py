"""`pipeline group` and `pipeline similar` over an input file: read, group or find neighbours, write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pipeline.core.records import errors_path_for, write_jsonl, write_rejected
from pipeline.ingest.reader import IngestResult, read_initiatives
from pipeline.models.constraints import LinkReport
from pipeline.models.embed import encoder_from_config
from pipeline.models.group import Neighbour, UnknownIdError, nearest
from pipeline.models.group_describe import Group
from pipeline.models.group_incremental import grouper_from_config


def write_groups(groups: Sequence[Group], path: str | Path) -> Path:
    """Write one JSON line per group to `path`."""
    return write_jsonl((group.to_dict() for group in groups), path)


@dataclass
class GroupRun:
    """What `group_file` did: the rows read, the groups written, where rejected rows went."""

    ingest: IngestResult
    groups: list[Group]
    out_path: Path
    errors_path: Path | None
    links: LinkReport | None = None

    def summary(self) -> str:
        grouped = sum(len(g.members) for g in self.groups)
        cross = sum(1 for g in self.groups if len(g.gemeenten) > 1)
        text = (
            f"{len(self.groups)} groups ({cross} across municipalities) holding {grouped} of "
            f"{len(self.ingest.accepted)} initiatives; written to {self.out_path}"
        )
        if self.links is not None:
            text += f"; reviewers' marks: {self.links.summary()}"
        if self.ingest.rejected:
            text += f"; {len(self.ingest.rejected)} rows rejected, see {self.errors_path}"
        return text


def group_file(input_path, out_path, settings, *, encoder=None, links=()) -> GroupRun:
    """Read initiatives from `input_path` (JSONL/CSV), group them with `settings.group`, write one
    JSON line per group to `out_path` and rejected rows beside it (`errors_path_for`). `links` are
    reviewers' marks `(a, b, same)` (must-link / cannot-link, see `pipeline.models.constraints`).

    Raises `InputFileError` when the input is not readable at all."""
    result = read_initiatives(input_path, limits=settings.ingest)
    errors_path = None
    if result.rejected:
        errors_path = write_rejected(result.rejected, errors_path_for(out_path))
    if encoder is None:

        encoder = encoder_from_config(settings.embed)
    grouper = grouper_from_config(settings.group, encoder=encoder).fit(result.accepted, links=links)
    write_groups(grouper.groups_, out_path)
    return GroupRun(result, grouper.groups_, Path(out_path), errors_path,
                    grouper.links_report_ if links else None)


def similar_in_file(input_path, query_id: str, k: int, settings, *, encoder=None
                    ) -> tuple[IngestResult, list[Neighbour]]:
    """The `k` nearest rows to `query_id` among the accepted rows of `input_path`.

    Raises `UnknownIdError` when no accepted row has that id (naming the rejected row if it was
    one)."""
    result = read_initiatives(input_path, limits=settings.ingest)
    if query_id not in {row.id for row in result.accepted}:
        rejected = [r for r in result.rejected if r.id == query_id]
        if rejected:
            raise UnknownIdError(
                f"id {query_id!r} staat in {input_path} maar is afgewezen: "
                f"{rejected[0].message()} / row was rejected"
            )
        raise UnknownIdError(
            f"id {query_id!r} komt niet voor in {input_path} / unknown id "
            f"({len(result.accepted)} rijen gelezen)"
        )
    if encoder is None:

        encoder = encoder_from_config(settings.embed)
    neighbours = nearest(result.accepted, query_id, k, config=settings.group, encoder=encoder)
    return result, neighbours
