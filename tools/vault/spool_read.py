"""Reading a docked camera's spool without ever leaving it.

The spool is the camera's storage mounted on the chief's desk: anything on it may be
hostile. Nothing here follows a symbolic link. The spool's folder is opened once and every
entry below it is opened relative to it with O_NOFOLLOW, so a recording folder, a file in
one, the device journal or ``inbox/`` that is a link is refused and named, and nothing
outside the spool is read or written (a link swapped in after a check is refused too).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from recorder.errors import VaultError
from recorder.evidence.chain import line_hash, split_pieces
from recorder.evidence.format import RECORDING_ID
from recorder.evidence.verify import sha256_file
from recorder.inputs import LIMITS

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block


class SpoolLink(VaultError):
    """An entry of the spool is a symbolic link (or not what it must be): refused."""


@dataclass
class Copied:
    """A recording folder copied into the vault."""
    bytes: int = 0
    problems: list[str] = field(default_factory=list)  # links and special files left on the camera
    digests: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (size, SHA-256) of the copy


@dataclass
class Listing:
    recordings: list[tuple[int, str]] = field(default_factory=list)  # (sequence, folder name)
    refused: list[tuple[str, str]] = field(default_factory=list)      # (name, why)


class SpoolReader:
    """A spool folder opened once; ``close()`` (or ``with``) releases it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            # The chief names the spool (a mount point may be a link); below it, nothing is.
            self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise VaultError(f"--from {self.path}: not a folder (is the camera docked and its spool "
                             f"mounted?): {exc.strerror}") from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self._fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def listing(self) -> Listing:
        """The recording folders, by sequence; names that look like recordings but are links
        or files are refused. A name is a recording id only when it matches whole."""
        out = Listing()
        for name in sorted(os.listdir(self._fd)):
            m = RECORDING_ID.fullmatch(name)
            if not m or not name.isascii():  # \d also matches other scripts' digits
                continue
            st = self._lstat(name)
            if st is None:
                continue
            if stat.S_ISLNK(st.st_mode):
                out.refused.append((name, "a symbolic link, not a folder: refused, nothing read through it"))
            elif not stat.S_ISDIR(st.st_mode):
                out.refused.append((name, "not a folder"))
            else:
                out.recordings.append((int(m["seq"]), name))
        out.recordings.sort()
        return out

    def exists(self, name: str) -> bool:
        return self._lstat(name) is not None

    def _open_dir(self, name: str) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=self._fd)
        except OSError as exc:
            raise _refusal(f"{self.path / name}", exc) from None

    def read(self, name: str, kind: str, *, folder: str | None = None) -> bytes:
        """A file of the spool (``folder/name`` or ``name``), never through a link, at most
        the size limit of its ``kind``."""
        where = self.path / folder / name if folder else self.path / name
        dfd = self._open_dir(folder) if folder else self._fd
        try:
            try:
                fd = os.open(name, _FILE_FLAGS, dir_fd=dfd)
            except OSError as exc:
                raise _refusal(str(where), exc) from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise SpoolLink(f"{where}: not a regular file: refused")
                limit = LIMITS[kind]
                data = _read_at_most(fd, limit + 1)
            finally:
                os.close(fd)
        finally:
            if folder:
                os.close(dfd)
        if len(data) > limit:
            raise SpoolLink(f"{where}: larger than the {limit // (1024 * 1024)} MiB allowed for a {kind}")
        return data

    def last_line_hash(self, folder: str, manifest: str) -> str | None:
        """The hash of the last well-formed line of a recording's manifest as the camera
        holds it (what a receipt names); None when it cannot be read."""
        try:
            data = self.read(manifest, "manifest", folder=folder)
            last = None
            for piece in split_pieces(data):
                if piece.line is not None:
                    last = line_hash(piece.raw)
            return last
        except (VaultError, OSError, ValueError, RecursionError):
            return None

    def size(self, folder: str) -> int:
        """Bytes of a recording folder's regular files (for the progress bar)."""
        total = 0
        try:
            dfd = self._open_dir(folder)
        except VaultError:
            return 0
        try:
            for name in os.listdir(dfd):
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
        except OSError:
            pass
        finally:
            os.close(dfd)
        return total

    def copy_recording(self, folder: str, dst: Path, progress=None, pool=None) -> Copied:
        """Copy a recording folder into ``dst`` (made here), each file then hashed as the
        copy reads back. Its files are copied side by side on ``pool`` (an executor) when
        given: the hashing uses every CPU, and the creations of files, which wait for the
        filesystem's journal, wait together.
        A link or a special file in it is not followed nor copied: it becomes a problem
        (the recording is then quarantined); a sub-folder is copied as an empty folder,
        which the verifier lists as unexpected."""
        dfd = self._open_dir(folder)
        copied, problems, jobs = Copied(), [], []
        try:
            dst.mkdir(parents=True)
            for name in sorted(os.listdir(dfd)):
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    problems.append(f"{folder}/{name}: a symbolic link on the camera: not followed, not copied")
                elif stat.S_ISDIR(st.st_mode):
                    (dst / name).mkdir()
                elif not stat.S_ISREG(st.st_mode):
                    problems.append(f"{folder}/{name}: not a regular file on the camera: not copied")
                else:
                    args = (dfd, name, dst / name, f"{self.path / folder / name}")
                    jobs.append((name, pool.submit(_copy_one, *args) if pool else _Done(_copy_one, *args)))
            for name, job in jobs:
                size, sha256 = job.result()
                copied.digests[name] = (size, sha256)
                copied.bytes += size
                if progress:
                    progress.advance(size, folder)
        finally:
            for _, job in jobs:  # none may still read through dfd once it is closed
                job.exception()
            os.close(dfd)
        copied.problems = problems
        return copied

    def inbox(self, name: str) -> Path:
        """The spool's inbox folder, made when absent; refused when it is a link or not a
        folder (the receipt would land outside the spool)."""
        st = self._lstat(name)
        if st is None:
            os.mkdir(name, 0o755, dir_fd=self._fd)
            st = self._lstat(name)
        if st is None or stat.S_ISLNK(st.st_mode):
            raise SpoolLink(f"{self.path / name}: a symbolic link: no receipt is written through it")
        if not stat.S_ISDIR(st.st_mode):
            raise SpoolLink(f"{self.path / name}: not a folder")
        return self.path / name


def _refusal(where: str, exc: OSError) -> VaultError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return SpoolLink(f"{where}: a symbolic link (or not a folder): refused, nothing read through it")
    if exc.errno == errno.ENOENT:
        return VaultError(f"{where}: not found")
    return VaultError(f"{where}: cannot be read ({exc.strerror})")


def _read_at_most(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _Done:
    """A call made at once, with a Future's ``result()`` and ``exception()``."""

    def __init__(self, fn, *args):
        self._value = self._error = None
        try:
            self._value = fn(*args)
        except Exception as exc:  # noqa: BLE001 - raised again by result()
            self._error = exc

    def result(self):
        if self._error is not None:
            raise self._error
        return self._value

    def exception(self):
        return self._error


def _copy_one(dfd: int, name: str, dst: Path, where: str) -> tuple[int, str]:
    """Copy one regular file opened without following links; exactly the size it had when
    opened (a file that grows on the camera meanwhile is not chased). Returns the size and
    SHA-256 of the copy, read back once written (while in the page cache)."""
    try:
        src = os.open(name, _FILE_FLAGS, dir_fd=dfd)
    except OSError as exc:
        raise _refusal(where, exc) from None
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            raise SpoolLink(f"{where}: not a regular file: refused")
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            left, offset = st.st_size, 0
            while left > 0:
                sent = os.sendfile(out, src, offset, min(left, 1 << 30))  # in the kernel
                if sent == 0:
                    break  # the file shrank on the camera: the verifier says what is missing
                offset += sent
                left -= sent
        finally:
            os.close(out)
        return sha256_file(dst)
    finally:
        os.close(src)
