"""Keeping the catalogue's same-idea groups up to date without regrouping it at every run.

`regroup(conn, grouper, full=False)` reads the current initiatives and the grouping state stored
beside the catalogue (`state_path`: CATALOGUE.grouping.npz, vectors and groups of the last run).
With a `GraphGrouper` it adds new rows to the stored groups (`update`), unless a full grouping
is asked for or due (`needs_full`: no state, other settings or encoder, the catalogue doubled);
any other grouper (the dense `Grouper`) regroups everything.

Crash safety: the state file is written first (renamed into place), then the groups and the
state's token in one catalogue transaction. A state whose token is not the catalogue's (a run
killed in between) is not used: the next run groups in full.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from pipeline.catalogue import idea_links, readmodel, schema, writes
from pipeline.core.records import as_initiative
from pipeline.models.group_describe import Group
from pipeline.models.embed import encoder_from_config
from pipeline.models.group_incremental import GroupingState, grouper_from_config

log = logging.getLogger("pipeline.run")

STATE_SUFFIX = ".grouping.npz"
STATE_TOKEN = "grouping_state_token"


@dataclass
class Regrouped:
    """What a regroup did: how many groups there are, `mode` "full" or "incremental", why a full
    one was done, and how many groups are new or changed."""

    groups: int
    mode: str
    reason: str | None = None
    changed: int | None = None

    def summary(self) -> str:
        text = f"{self.groups} group(s), {self.mode}"
        if self.reason:
            text += f" ({self.reason})"
        if self.changed is not None:
            text += f", {self.changed} new or changed"
        return text


def state_path(conn: sqlite3.Connection) -> Path | None:
    """CATALOGUE.grouping.npz beside the catalogue file (None for an in-memory catalogue)."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main" and row[2]:
            return Path(row[2] + STATE_SUFFIX)
    return None


def load_state(conn: sqlite3.Connection) -> GroupingState | None:
    """The stored state, when it belongs to the groups in the catalogue."""
    path = state_path(conn)
    if path is None:
        return None
    try:
        state = GroupingState.load(path)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("%s: grouping state unreadable (%s); grouping in full", path, exc)
        return None
    token = schema.get_state(conn, STATE_TOKEN)
    if state is None or token is None or state.token != token:
        return None
    return state


def regroup(conn: sqlite3.Connection, grouper, *, full: bool = False,
            grouped_max_pk=None, links=()) -> Regrouped:
    """Bring the catalogue's groups up to date with its current initiatives (module docstring).

    `links`: reviewers' same-idea marks `(a, b, same)`, applied as must-link / cannot-link by a
    full grouping (`pipeline.models.constraints`); an incremental update keeps the settled groups
    (built with the marks of their time) and adds new rows, so a caller asks for `full` when marks
    were added since."""
    rows = [as_initiative(r) for r in readmodel.current_initiatives(conn)]
    if not hasattr(grouper, "update"):
        groups = grouper.fit(rows, links=links).groups_ if len(rows) >= 2 else []
        count = writes.replace_groups(conn, [g.to_dict() for g in groups],
                                      grouped_max_pk=grouped_max_pk)
        return Regrouped(count, "full", "dense grouping")
    state = None if full else load_state(conn)
    reason = "asked for" if full else grouper.needs_full(state, rows)
    if reason is None:
        grouper.update(state, rows)
        mode, changed = "incremental", len(grouper.changed_)
    else:
        previous = state.groups if state is not None else _stored_groups(conn)
        grouper.fit(rows, previous=previous, links=links)
        mode, changed = "full", None
    groups = grouper.groups_
    new_state = grouper.state_
    path = state_path(conn)
    token = uuid.uuid4().hex
    if new_state is not None and path is not None:
        new_state.token = token
        new_state.save(path)
    count = writes.replace_groups(conn, [g.to_dict() for g in groups],
                                  grouped_max_pk=grouped_max_pk, state={STATE_TOKEN: token})
    log.info("regrouped (%s%s): %d current initiative(s), %d group(s)%s", mode,
             f": {reason}" if reason else "", len(rows), count,
             f", {changed} new or changed" if changed is not None else "")
    return Regrouped(count, mode, reason, changed)


def regroup_catalogue(settings, db_path=None, *, full: bool = False) -> Regrouped:
    """`regroup` on the catalogue of `settings.store` (or `db_path`), with `[group]` settings."""
    grouper = grouper_from_config(settings.group, encoder=encoder_from_config(settings.embed))
    with closing(schema.connect_from_config(settings.store, db_path)) as conn:
        marks = idea_links.links_signature(conn)
        links = idea_links.as_constraints(idea_links.links_in_force(conn))
        result = regroup(conn, grouper, full=full or idea_links.groups_need_links(conn),
                         grouped_max_pk=readmodel.max_initiative_pk(conn), links=links)
        idea_links.record_grouped(conn, marks)
        return result


def _stored_groups(conn):
    """The catalogue's groups as `Group`s, so a first full grouping keeps their ids."""
    from_catalogue = readmodel.groups(conn)
    return [_group(g) for g in from_catalogue]


def _group(record) -> Group:
    return Group(record["group_id"], tuple(record["members"]), tuple(record.get("gemeenten") or ()),
                 record.get("naam") or "", tuple(record.get("kernwoorden") or ()),
                 float(record.get("cohesie") or 0.0))
