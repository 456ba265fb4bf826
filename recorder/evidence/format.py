"""The evidence format in one place: the contract between camera, vault and verifier.

Everything that both writes and reads evidence agrees on lives here and only here: file
names in a recording folder and in the spool, the recording id (camera id, UTC start,
sequence number) and the one camera-id rule, the event names of the manifest and the
device journal, the signing contexts of every signed log and document, the one UTC time
format and the one canonical JSON. The writers (chain, journal, spool, recording,
recovery, receipt), the verifier, the vault and the configuration schema import it; none
of them imports another only for a name.

Names are always matched whole (``re.fullmatch``): ``$`` would let a trailing newline
through, and a folder name ending in one must not pass as a recording id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

# -- files ---------------------------------------------------------------------------------
MANIFEST_FILE = "manifest.jsonl"     # in each recording folder
JOURNAL_FILE = "journal.jsonl"       # the device journal, at the top of the spool
INBOX = "inbox"                      # the spool folder the vault writes receipts into
ASSIGNMENT_SUFFIX = ".assignment"    # a signed assignment (or end) left in an inbox
PART = ".part"                       # a file still being written
SEGMENT_SUFFIX = ".ts.age"
META_SUFFIX = ".meta.age"
CLOSE_META = "close.meta.age"        # metadata noted after the last segment
MAX_SEGMENT = 999_999                # segment numbers are written on six digits

_SEGMENT_FILE = re.compile(r"seg-(?P<index>\d{6})(?P<kind>\.ts\.age|\.meta\.age)(?P<part>\.part)?")


def segment_names(index: int) -> tuple[str, str]:
    """(segment file, metadata file) names of segment ``index``."""
    return f"seg-{index:06d}{SEGMENT_SUFFIX}", f"seg-{index:06d}{META_SUFFIX}"


def segment_index(name: str) -> int | None:
    """The segment number a segment or metadata file name (``.part`` or not) carries."""
    m = _SEGMENT_FILE.fullmatch(name) if isinstance(name, str) else None
    return int(m["index"]) if m else None


def is_media_file(name: str) -> bool:
    """A segment's ciphertext, sealed or still ``.part``."""
    return isinstance(name, str) and name.endswith((SEGMENT_SUFFIX, SEGMENT_SUFFIX + PART))


def is_metadata_file(name: str) -> bool:
    return isinstance(name, str) and name.endswith((META_SUFFIX, META_SUFFIX + PART))


def is_age_file(name: str) -> bool:
    return isinstance(name, str) and name.endswith((".age", ".age" + PART))


def is_plain_name(name) -> bool:
    """A file name a manifest may list: one name in the folder, never a path out of it."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and "\0" not in name and len(name.encode("utf-8", "surrogateescape")) <= 255)


# -- camera and recording ids --------------------------------------------------------------
# The one camera-id rule (configuration, provisioning, assignment, spool, vault): no '_',
# which separates the parts of a recording id.
CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
CAMERA_ID_HELP = "letters, digits, '.' and '-', starting with a letter or digit, at most 64"
# A recording's sequence number: six digits at least, nine at most (a camera would need
# a recording a second for thirty years to reach it); a longer one is not a recording.
MAX_RECORDING_SEQ = 999_999_999
RECORDING_ID = re.compile(rf"(?P<camera>{CAMERA_ID.pattern})_(?P<time>\d{{8}}T\d{{6}}Z)_(?P<seq>\d{{6,9}})")


def is_camera_id(text) -> bool:
    return isinstance(text, str) and CAMERA_ID.fullmatch(text) is not None


@dataclass(frozen=True)
class RecordingName:
    """The parts of a recording id."""

    camera: str
    time: str      # UTC start, 20260921T120000Z
    seq: int


def parse_recording_id(name) -> RecordingName | None:
    """The parts of a recording id, or None when ``name`` is not one (matched whole)."""
    m = RECORDING_ID.fullmatch(name) if isinstance(name, str) else None
    return RecordingName(m["camera"], m["time"], int(m["seq"])) if m else None


def recording_id(camera_id: str, started_at: float, seq: int) -> str:
    return f"{camera_id}_{datetime.fromtimestamp(started_at, UTC).strftime('%Y%m%dT%H%M%SZ')}_{seq:06d}"


# -- events ----------------------------------------------------------------------------------
OPENED, PROGRESS, SEALED, ABORTED, CLOSED, RECOVERED = (
    "opened", "progress", "sealed", "aborted", "closed", "recovered")
MANIFEST_EVENTS = (OPENED, PROGRESS, SEALED, ABORTED, CLOSED, RECOVERED)
ENDINGS = (CLOSED, RECOVERED)     # a recording's manifest ends with one of these

RECORDING_OPENED = "recording opened"
RECORDING_CLOSED = "recording closed"
RECORDING_RECOVERED = "recording recovered"
RECORDING_REFUSED = "recording refused"
OFFLOAD_RECEIPT = "offload receipt"
SPACE_FREED = "space freed"               # the vault's receipt covered it: folder removed
RECORDING_ERASED = "recording erased"     # erased on the camera after the retention
OPENING_UNDONE = "opening undone"         # a cut before an opened line was durable: nothing recorded
JOURNAL_EVENTS = (
    "boot", "shutdown", "config applied", "config refused", "assignment",
    RECORDING_OPENED, RECORDING_CLOSED, RECORDING_REFUSED, RECORDING_RECOVERED,
    OFFLOAD_RECEIPT, SPACE_FREED, RECORDING_ERASED, "storage full", "driver fault",
    "config fallback", "start failed", "selftest started", "selftest ended", OPENING_UNDONE,
    "config files restored",
)
# A recording folder is made under this name and renamed into place once its opened line
# is durable, so a folder with a recording id always starts with a signed opened line. No
# recording id starts with a dot.
OPENING_PREFIX = ".opening-"
# A recording a receipt frees is renamed under this name, journalled, then removed, so a
# kill at any point leaves it either in place or accounted for by the next start.
FREEING_PREFIX = ".freeing-"
# Journal events that account for a recording no longer in the spool.
GONE_EVENTS = (SPACE_FREED, RECORDING_ERASED)

def found_entries(line: dict) -> list[dict]:
    """The ``found`` entries of a ``recovered`` line that are objects."""
    found = line.get("found")
    return [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []


def listed_files(lines: list[dict]) -> set[str]:
    """Every file a manifest's lines account for (plain names only: never a path)."""
    names: list = []
    for line in lines:
        event = line.get("event")
        if event in (SEALED, CLOSED):
            names += (line.get("file"), line.get("meta_file"))
        elif event == ABORTED:
            names.append(line.get("file"))
        elif event == RECOVERED:
            names += (f.get("file") for f in found_entries(line))
    return {n for n in names if is_plain_name(n)}


# -- signing contexts (a signed line or document cannot be moved into another log) ----------
MANIFEST_CONTEXT = "pieton/manifest/1"
JOURNAL_CONTEXT = "pieton/journal/1"
VAULT_JOURNAL_CONTEXT = "pieton/vault-journal/1"
RECEIPT_CONTEXT = "pieton/receipt/1"
REGISTER_CONTEXT = "pieton/register/1"
REPORT_CONTEXT = "pieton/extraction-report/1"
CHECKPOINT_CONTEXT = "pieton/log-checkpoint/1"
METADATA_FORMAT = "pieton/metadata/1"


# -- time and JSON -----------------------------------------------------------------------------
def utc_iso(epoch: float) -> str:
    """The one UTC time of every pieton record: milliseconds, ``Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")


def parse_utc(text) -> float:
    """A time as ``utc_iso`` writes it (milliseconds optional) in epoch seconds;
    ValueError naming the text otherwise."""
    if not isinstance(text, str) or not _UTC.fullmatch(text):
        raise ValueError(f"{str(text)[:40]!r} is not a UTC time 'YYYY-mm-ddTHH:MM:SS.mmmZ'")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a UTC time: {exc}") from None


def canonical(obj) -> bytes:
    """The bytes that are hashed and signed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
