"""File handling of the inbox job that never follows a link or leaves the inbox folder.

Municipalities (or whoever can write into the inbox) control the names and kinds of what lies
there, so:

- `pending_files` lists regular files only (`lstat`: a symbolic link is never a file to read,
  whatever it points at); `read_file` / `file_sha256` open with O_NOFOLLOW and check the opened
  descriptor is a regular file, so a name swapped for a link in between is refused too;
- `inbox_folder` gives processed/ or rejected/ only when it is a real folder inside the inbox
  (a link there would move files elsewhere): otherwise `InputFileError`;
- `target_in` picks a name that exists nowhere yet (checked without following links) and fits
  the file system's 255-byte limit, also after the content hash is added on a collision;
- `write_beside` writes a report through a new temporary file renamed into place: a link planted
  under the report's name is replaced, never written through;
- `shown_name` is how a file name appears in the catalogue, logs and reports: bytes that are not
  UTF-8 as \\xNN, control, separator and format characters as \\uXXXX, so no name forges a log line
  or sends escape codes to a terminal.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import unicodedata
from pathlib import Path

from pipeline.core.errors import InputFileError

HASH_CHUNK_BYTES = 1 << 20
NAME_MAX_BYTES = 255


class NotAFile(OSError):
    """The name is (now) a link, a folder or a device: nothing to read."""


def shown_name(name: str) -> str:
    """`name` safe for a log line, a terminal, a report and SQLite (see the module docstring)."""
    out = []
    for char in name:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or code < 0x20 or 0x7F <= code < 0xA0 or (
                code >= 0x80 and unicodedata.category(char) in ("Zl", "Zp", "Cf")):
            out.append(f"\\u{code:04x}")
        elif char == "\\":
            out.append("\\\\")
        else:
            out.append(char)
    return "".join(out)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def pending_files(inbox: Path, ignore_suffixes=()) -> list[Path]:
    """Regular files directly in `inbox`, in name order, minus hidden and still-uploading ones.
    Links are left alone: never read, moved or recorded."""
    suffixes = tuple(s.lower() for s in ignore_suffixes)
    return sorted(
        (
            p for p in Path(inbox).iterdir()
            if not p.name.startswith(".") and not p.name.lower().endswith(suffixes) and _is_regular(p)
        ),
        key=lambda p: p.name,
    )


def links_in(inbox: Path) -> list[Path]:
    """Symbolic links directly in `inbox` (reported, never followed)."""
    return sorted(p for p in Path(inbox).iterdir() if p.is_symlink())


def _open(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if os.path.islink(path):
            raise NotAFile(f"{shown_name(Path(path).name)} is a link") from None
        raise exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotAFile(f"{shown_name(Path(path).name)} is not a regular file")
    return fd


def read_file(path: Path) -> bytes:
    """The bytes of regular file `path` (O_NOFOLLOW; `NotAFile` for a link or a folder)."""
    with os.fdopen(_open(path), "rb") as handle:
        return handle.read()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with os.fdopen(_open(path), "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inbox_folder(inbox: Path, name: str, *, create: bool = True) -> Path:
    """`inbox/name` as a real folder (made when missing, if `create`); `InputFileError` when it
    is a link or not a folder, so no file is ever moved or written outside the inbox."""
    folder = Path(inbox) / name
    if not create and not os.path.lexists(folder):
        return folder
    try:
        folder.mkdir(exist_ok=True)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise InputFileError(
            f"{folder}: is een link of geen map; de job verplaatst niets buiten de inbox. Maak er "
            f"een gewone map van. / {name}/ is a link or not a folder; nothing is moved outside "
            f"the inbox."
        )
    return folder


def _fit(stem: str, tail: str) -> str:
    """`stem + tail`, the stem cut so the name fits NAME_MAX_BYTES (never mid-character)."""
    room = NAME_MAX_BYTES - len(os.fsencode(tail))
    encoded = os.fsencode(stem)
    while len(encoded) > room:
        stem = stem[:-1]
        encoded = os.fsencode(stem)
    return stem + tail


def target_in(folder: Path, path: Path, sha256: str, *, reserve: str = "") -> Path:
    """Where `path` goes in `folder`: its own name, or, when that name is taken (by anything,
    a link included), the name with the short content hash, cut to fit the 255-byte limit.
    `reserve` is a suffix that must still fit after the name (the report's ".fout.txt")."""
    target = folder / path.name
    too_long = len(os.fsencode(path.name + reserve)) > NAME_MAX_BYTES
    if too_long or os.path.lexists(target) or (reserve and os.path.lexists(f"{target}{reserve}")):
        suffix = path.suffix if len(os.fsencode(path.suffix)) <= 32 else ""
        stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
        target = folder / _fit(stem, f".{sha256[:12]}{suffix}{reserve}")
        target = target.with_name(target.name[: len(target.name) - len(reserve)] if reserve else target.name)
    return target


def move_to(path: Path, folder: Path, sha256: str) -> Path:
    """Move `path` into `folder` (see `target_in`); atomic within one file system. A link under
    the target name is replaced, not followed (rename never follows its target)."""
    target = target_in(folder, path, sha256)
    os.replace(path, target)
    return target


def write_beside(target: Path, text: str) -> Path:
    """Write `text` to `target` through a new temporary file in its folder, then rename it there."""
    fd, tmp = tempfile.mkstemp(prefix=".report.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def check_lock_path(path: Path) -> None:
    """`InputFileError` when the lock file's name is a link (opening it would truncate the target)."""
    if os.path.islink(path) or (os.path.lexists(path) and not _is_regular(path)):
        raise InputFileError(
            f"{path}: het slotbestand is een link of geen gewoon bestand; verwijder het. / "
            f"The lock file is a link or not a regular file."
        )
