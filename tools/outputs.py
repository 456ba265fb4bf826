"""Files the technician's tools write where a person said (``--out``): an existing file is
replaced only when it is one of the same kind (a bundle signed again under the same name),
never when it is something else (a vault's journal, the police register, a key), which
the replacement would destroy without a trace."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from recorder.inputs import InputError

_HEAD = 4096  # bytes read from an existing file to tell its kind


def refuse_overwrite(path: str | os.PathLike, option: str, what: str, same_kind: Callable[[bytes], bool]) -> None:
    """An InputError when ``path`` exists and is not a regular file holding ``what``."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot be checked ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{option} {path}: is a folder; name the file to write")
    if not stat.S_ISREG(mode):
        raise InputError(f"{option} {path}: exists and is not a regular file; it is never replaced")
    with open(path, "rb") as handle:
        head = handle.read(_HEAD)
    if not same_kind(head):
        raise InputError(f"{option} {path}: exists and is not {what}; it is never overwritten "
                         "(choose another name)")
