"""The one writer every layer uses: atomic, durable files with the umask's permissions, and
a lock that stops two processes from writing one run directory.

Runs are reported on while other runs may still be writing, and a killed process or a
power loss must never leave a half-written checkpoint, metrics file, figure or report
behind. Every file is written to a unique temporary name in the same directory, flushed to
disk (``fsync``), given the mode the user's umask gives an ordinary file (``mkstemp``
alone would make it 0600, unreadable to a group on shared storage or a web server), moved
into place with :func:`os.replace` (atomic on POSIX), and the directory entry is flushed
too. A write that fails (disk full, no permission) raises :class:`~genda.errors.WriteError`
and leaves the previous file untouched. The cost per file is measured in
``benchmarks/README.md`` (section "Durable writes").
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from genda.errors import ConfigError, RunLockedError, WriteError

LOCK_NAME = ".genda.lock"
# The columns of a domain-adaptation ``table.csv``: written by the engine, read by the report.
TABLE_COLUMNS = ("method", "source", "target", "seed", "target_accuracy")
# Written by genda since the intervals came in; older tables without it still read.
TABLE_OPTIONAL = ("target_test_images",)


FOLDER_NAME_RULE = "plain folder names (no '/', '\\', '.' or '..')"  # for error messages


def is_folder_name(name: str) -> bool:
    """Whether ``name`` (a class name from someone's CSV or checkpoint) is one plain folder
    name: ``genda sample`` writes each class into ``OUT/<class>/``, which a ``..`` or a ``/``
    would take outside ``OUT``."""
    return bool(name) and name not in (".", "..") and not set(name) & {"/", "\\", "\0"}


def file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (0666 & ~umask).

    Read from ``/proc/self/status`` where Linux has it: the portable way, setting the umask
    and setting it back, would give a file another thread creates meanwhile the wrong mode."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            umask = next(int(ln.split()[1], 8) for ln in f if ln.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _make_dirs(directory: Path) -> None:
    """``mkdir -p`` whose new directory entries are flushed too (each one's parent fsynced),
    so a durable file is not lost with a folder the crash forgot."""
    new = []
    d = directory
    while not d.exists() and d != d.parent:
        new.append(d)
        d = d.parent
    directory.mkdir(parents=True, exist_ok=True)
    for d in reversed(new):
        fsync_dir(d.parent)


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (the rename) to disk; a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not support fsync on directories
    finally:
        os.close(fd)


def _reason(err: BaseException, directory: Path) -> str:
    """A one-line cause; torch's own disk-full error names a C++ source line instead."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    text = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    text = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", text)  # torch's C++ location
    try:
        free = os.statvfs(directory)
        free_mib = free.f_bavail * free.f_frsize / 2**20
    except OSError:
        return text
    return f"{text} ({free_mib:.0f} MiB free on that disk)"


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success make it durable and move it onto ``path``.

    The parent directory is created. On error the temporary file is removed, ``path`` is left
    untouched and an ``OSError`` or a writer's ``RuntimeError`` becomes a
    :class:`~genda.errors.WriteError` naming ``path``.
    """
    final = Path(path)
    try:
        _make_dirs(final.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
    except OSError as e:
        raise WriteError(f"cannot write {final}: {_reason(e, final.parent)}") from e
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, file_mode())
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except (OSError, RuntimeError) as e:
        raise WriteError(
            f"cannot write {final}: {_reason(e, final.parent)}; the previous file is unchanged"
        ) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file genda wrote (``metrics.json``); a damaged one is a one-line
    :class:`~genda.errors.ConfigError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); fix or delete it") from e


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def write_csv(
    path: str | os.PathLike[str], header: Sequence[str], rows: Iterable[Sequence]
) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buf.getvalue())


def write_yaml(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, yaml.safe_dump(obj, sort_keys=False))


def save_torch(path: str | os.PathLike[str], obj: Any) -> Path:
    """``torch.save`` atomically; load such files back with ``torch.load(weights_only=True)``."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


@contextmanager
def locked(directory: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (created if missing) while writing into it.

    An ``fcntl.flock`` on ``DIR/.genda.lock``: the kernel releases it when the holder exits,
    however it dies, so a lock left by a killed process never blocks ``--resume``; the file
    itself stays and records the last holder. A second writer raises
    :class:`~genda.errors.RunLockedError` at once, naming the holder's host and process id.
    A directory this call created is removed again if nothing but the lock was written
    (a run that failed on bad input leaves no empty run directory behind).
    """
    directory = Path(directory)
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as e:
        raise WriteError(f"cannot lock {directory}: {_reason(e, directory)}") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise WriteError(f"cannot lock {directory}: {_reason(e, directory)}") from e
            holder = os.pread(fd, 256, 0).decode("utf-8", "replace").strip() or "another process"
            raise RunLockedError(
                f"{directory} is being written by {holder}; wait for it to finish, "
                "stop it, or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        if created and [p.name for p in directory.iterdir()] == [LOCK_NAME]:
            (directory / LOCK_NAME).unlink()
            directory.rmdir()
        os.close(fd)  # closing the descriptor releases the flock
