"""Reviewer accounts: argon2 password hashes, adding, changing, listing and deactivating accounts,
and the session fingerprint that ends old sessions when a password changes.
"""
from __future__ import annotations



from pipeline.catalogue import schema
from pipeline.core.errors import ReviewError


# --------------------------------------------------------------------------- storage
# Tables `reviewers` and `reviews` are described in pipeline/catalogue/schema.py. Every save is a new row in
# `reviews`; nothing is ever updated or deleted.


_hasher = None


def password_hasher():
    """One argon2id PasswordHasher with the library's defaults (RFC 9106 low-memory profile)."""
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def _new_password_hash(password: str, min_password_chars: int) -> str:
    """The argon2 hash of a new password; ReviewError when it is shorter than the minimum."""
    if len(password or "") < min_password_chars:
        raise ReviewError(
            f"wachtwoord te kort: minstens {min_password_chars} tekens / password too short "
            f"(at least {min_password_chars} characters)"
        )
    return password_hasher().hash(password)


def add_reviewer(conn, name: str, password: str, *, min_password_chars: int) -> int:
    """Create a reviewer account; return its pk.

    Raises ReviewError when the name is empty or taken, or the password is shorter than
    `min_password_chars`.
    """
    name = (name or "").strip()
    if not name:
        raise ReviewError("de naam van de beoordelaar is leeg / reviewer name is empty")
    hashed = _new_password_hash(password, min_password_chars)
    with schema.transaction(conn):
        if conn.execute("SELECT 1 FROM reviewers WHERE name = ?", (name,)).fetchone():
            raise ReviewError(f"beoordelaar {name!r} bestaat al / reviewer {name!r} already exists")
        cursor = conn.execute(
            "INSERT INTO reviewers (name, password_hash, created_at, active) VALUES (?, ?, ?, 1)",
            (name, hashed, schema.now()),
        )
    return cursor.lastrowid


def set_password(conn, name: str, password: str, *, min_password_chars: int) -> None:
    """Give reviewer `name` a new password (and make the account active again).

    Raises ReviewError when the name is unknown or the password is too short.
    """
    name = (name or "").strip()
    hashed = _new_password_hash(password, min_password_chars)
    with schema.transaction(conn):
        cursor = conn.execute(
            "UPDATE reviewers SET password_hash = ?, active = 1 WHERE name = ?", (hashed, name)
        )
        if cursor.rowcount == 0:
            raise ReviewError(f"onbekende beoordelaar {name!r} / unknown reviewer")


def list_reviewers(conn) -> list[dict]:
    """Every reviewer account: name, created_at, active, reviews (how many saves)."""
    return [
        dict(row)
        for row in conn.execute(
            "SELECT v.name, v.created_at, v.active, count(r.pk) AS reviews FROM reviewers v "
            "LEFT JOIN reviews r ON r.reviewer_pk = v.pk GROUP BY v.pk ORDER BY v.name"
        )
    ]


def check_password(conn, name: str, password: str) -> bool:
    """True when `name` is an active reviewer and `password` is theirs.

    An unknown name costs the same hashing time as a wrong password, so response times do not tell
    which names exist. A hash made with older parameters is upgraded on a successful login.
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = password_hasher()
    row = conn.execute(
        "SELECT pk, password_hash FROM reviewers WHERE name = ? AND active = 1", ((name or "").strip(),)
    ).fetchone()
    stored = row["password_hash"] if row else _dummy_hash()
    try:
        hasher.verify(stored, password or "")
    except (VerificationError, InvalidHashError):
        return False
    if row is None:
        return False
    if hasher.check_needs_rehash(stored):
        with schema.transaction(conn):
            conn.execute(
                "UPDATE reviewers SET password_hash = ? WHERE pk = ?",
                (hasher.hash(password), row["pk"]),
            )
    return True


def session_fingerprint(conn, name: str | None) -> str | None:
    """A digest of active reviewer `name`'s password hash; None for an unknown or inactive name.

    Stored in the session at login and compared on every request, so a new password
    (`set_password`) or a deactivated account ends every session opened before. The cookie is
    readable by its holder, so it carries this digest, never the hash itself.
    """
    import hashlib

    row = conn.execute(
        "SELECT password_hash FROM reviewers WHERE name = ? AND active = 1", (name or "",)
    ).fetchone()
    if row is None:
        return None
    return hashlib.sha256(row["password_hash"].encode("utf-8")).hexdigest()


def deactivate_reviewer(conn, name: str) -> None:
    """Stop reviewer `name` from logging in (their reviews stay); `set_password` reactivates.

    Raises ReviewError when the name is unknown.
    """
    with schema.transaction(conn):
        cursor = conn.execute("UPDATE reviewers SET active = 0 WHERE name = ?", ((name or "").strip(),))
        if cursor.rowcount == 0:
            raise ReviewError(f"onbekende beoordelaar {name!r} / unknown reviewer")


_dummy = None


def _dummy_hash() -> str:
    global _dummy
    if _dummy is None:
        _dummy = password_hasher().hash("geen-account")
    return _dummy


# --------------------------------------------------------------------------- web sessions


def _token_digest(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def open_web_session(conn, name: str, *, lifetime_seconds: float) -> str:
    """A new server-side session for active reviewer `name`; returns the token for the cookie.
    Expired sessions of every reviewer are removed on the way."""
    import secrets
    from datetime import datetime, timedelta, timezone

    token = secrets.token_urlsafe(32)
    start = datetime.now(timezone.utc)
    expires = (start + timedelta(seconds=lifetime_seconds)).isoformat(timespec="seconds")
    with schema.transaction(conn):
        conn.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (schema.now(),))
        conn.execute(
            "INSERT INTO web_sessions (token_sha256, reviewer_pk, created_at, expires_at) "
            "SELECT ?, pk, ?, ? FROM reviewers WHERE name = ? AND active = 1",
            (_token_digest(token), start.isoformat(timespec="seconds"), expires, (name or "").strip()),
        )
    return token


def web_session_reviewer(conn, token: str) -> str | None:
    """The active reviewer whose unexpired session `token` is, or None (ended, expired, unknown)."""
    row = conn.execute(
        "SELECT v.name FROM web_sessions s JOIN reviewers v ON v.pk = s.reviewer_pk "
        "WHERE s.token_sha256 = ? AND s.expires_at > ? AND v.active = 1",
        (_token_digest(token), schema.now()),
    ).fetchone()
    return row["name"] if row else None


def end_web_session(conn, token: str) -> None:
    """End the session `token` (logout): the cookie holding it no longer logs anyone in."""
    with schema.transaction(conn):
        conn.execute("DELETE FROM web_sessions WHERE token_sha256 = ?", (_token_digest(token),))

