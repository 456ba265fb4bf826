"""Signed configuration bundles: one file carrying a device configuration, every file it
references, its version and target, signed by a technician.

Layout (all integers big-endian)::

    b"PIETONB1"  u32 header length  header (canonical JSON)  64-byte Ed25519 signature
    then, for each file listed in the header, in order: one byte 1 and its bytes,
    or one byte 0 when the file is left out of a transfer (the device already has it).

The signature covers ``b"pieton/config-bundle/1\\n" + header``; the header lists every
file's name, size and SHA-256, so files are checked by hash and a transfer may leave out
the files the device already holds (a configuration-only flash need not resend the
notice audio). A WAV notice is shipped as Opus in Ogg by default (about 15 times smaller
over a 115200-baud link) and decoded back to WAV when installed.

Every refusal is a BundleError whose ``code`` is one of REASONS.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import wave
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.signer import verify_signature
from recorder.config import Config, parse_config
from recorder.device_rules import authorisation_ended
from recorder.errors import BundleError, ConfigError
from recorder.evidence.format import CAMERA_ID_HELP, canonical, is_camera_id, utc_iso
from recorder.inputs import InputError, loads_strict, read_bounded

MAGIC = b"PIETONB1"
CONTEXT = b"pieton/config-bundle/1"
CONFIG_NAME = "pieton.toml"
MAX_BUNDLE_BYTES = 8 * 1024 * 1024
INSTALLED_NAME = "bundle.pbn"  # the bundle itself, kept beside the files it installed
FORMAT = 1

REASONS = {
    "oversize": "the bundle is larger than the device accepts",
    "bad-format": "not a well-formed pieton bundle",
    "file-altered": "a file's bytes do not match the hash the technician signed",
    "bad-signature": "the signature does not verify",
    "unknown-signer": "the signer is not a trusted technician of this device",
    "revoked-signer": "the signer's key was revoked by a later configuration",
    "wrong-device": "the bundle targets another camera",
    "wrong-fleet": "the bundle targets another fleet",
    "not-newer": "the version is not newer than the one running (replay or rollback)",
    "file-missing": "a file the configuration references is not in the bundle",
    "config-invalid": "the configuration fails its check",
    "bad-key": "the technician key file cannot be used",
    "storage": "the device could not write the configuration to its storage",
}

_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _target_name_ok(kind: str, name) -> bool:
    """A device is named by its camera id (the one rule), a fleet by the fleet's rule."""
    return is_camera_id(name) if kind == "device" else isinstance(name, str) and bool(_TARGET.fullmatch(name))
ENCODINGS = ("raw", "opus")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- technician keys ----------------------------------------------------------------------

def load_technician_key(path: str | Path) -> Ed25519PrivateKey:
    """A technician key as `pieton keys technician` writes it: a raw 32-byte Ed25519 seed."""
    path = Path(path)
    try:
        seed = read_bounded(path, "key", what=f"technician key {path}")
    except InputError as exc:
        raise BundleError("bad-key", str(exc)) from None
    if len(seed) != 32:
        raise BundleError("bad-key", f"technician key {path}: expected a raw 32-byte Ed25519 seed, "
                                     f"found {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


# -- the notice audio, shipped as Opus ----------------------------------------------------

def encode_opus(wav_bytes: bytes, bitrate: int = 32000) -> tuple[bytes, int, int]:
    """WAV -> Opus in Ogg; returns the bytes, the WAV's sample rate and channel count."""
    import av  # lazy: only signing and installing a notice need it

    with av.open(io.BytesIO(wav_bytes), format="wav") as source:
        stream = source.streams.audio[0]
        rate, channels = stream.rate, stream.channels
        layout = "mono" if channels == 1 else "stereo"
        out_buf = io.BytesIO()
        # bitexact: no random Ogg serial, so re-signing an unchanged notice gives the same
        # bytes and a configuration-only flash can leave it out
        with av.open(out_buf, "w", format="ogg", options={"fflags": "+bitexact"}) as out:
            opus = out.add_stream("libopus", rate=48000, layout=layout)
            opus.bit_rate = bitrate
            resampler = av.AudioResampler(format="s16", layout=layout, rate=48000)
            for frame in source.decode(stream):
                for piece in resampler.resample(frame):
                    out.mux(opus.encode(piece))
            for piece in resampler.resample(None):
                out.mux(opus.encode(piece))
            out.mux(opus.encode(None))
    return out_buf.getvalue(), rate, channels


def decode_opus(ogg_bytes: bytes, rate: int, channels: int) -> bytes:
    """Opus in Ogg -> 16-bit PCM WAV at the original rate, for the speaker."""
    import av

    layout = "mono" if channels == 1 else "stereo"
    pcm = bytearray()
    with av.open(io.BytesIO(ogg_bytes), format="ogg") as source:
        stream = source.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        for frame in source.decode(stream):
            for piece in resampler.resample(frame):
                pcm += bytes(piece.planes[0])[: piece.samples * 2 * channels]
        for piece in resampler.resample(None):
            pcm += bytes(piece.planes[0])[: piece.samples * 2 * channels]
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(pcm))
    return out.getvalue()


# -- the bundle ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BundleFile:
    name: str
    size: int
    sha256: str
    encoding: str = "raw"
    rate: int | None = None
    channels: int | None = None
    data: bytes | None = None  # None: left out of this transfer

    def entry(self) -> dict:
        entry = {"name": self.name, "size": self.size, "sha256": self.sha256, "encoding": self.encoding}
        if self.encoding == "opus":
            entry.update(rate=self.rate, channels=self.channels)
        return entry

    def installed_bytes(self) -> bytes:
        """The file as the configuration reads it (an Opus notice decoded back to WAV)."""
        assert self.data is not None
        if self.encoding == "opus":
            return decode_opus(self.data, self.rate, self.channels)
        return self.data


@dataclass(frozen=True)
class Bundle:
    header: dict
    header_bytes: bytes
    signature: bytes
    files: tuple[BundleFile, ...]

    @property
    def version(self) -> int:
        return self.header["version"]

    @property
    def target(self) -> tuple[str, str]:
        return self.header["target"]["kind"], self.header["target"]["name"]

    @property
    def signer(self) -> str:
        return self.header["signer"]

    @property
    def created(self) -> str:
        return self.header["created"]

    @property
    def missing(self) -> list[str]:
        return [f.name for f in self.files if f.data is None]

    def file(self, name: str) -> BundleFile | None:
        return next((f for f in self.files if f.name == name), None)

    def to_bytes(self, omit: set[str] | frozenset = frozenset()) -> bytes:
        """The bundle; files whose SHA-256 is in ``omit`` are left out (a thin transfer)."""
        parts = [MAGIC, struct.pack(">I", len(self.header_bytes)), self.header_bytes, self.signature]
        for f in self.files:
            if f.data is None or f.sha256 in omit:
                parts.append(b"\0")
            else:
                parts += [b"\1", f.data]
        return b"".join(parts)

    @property
    def digest(self) -> str:
        """SHA-256 of the complete bundle: what every recording's manifest binds."""
        return _sha256(self.to_bytes())

    def describe_target(self) -> str:
        kind, name = self.target
        return f"{kind} {name}"

    def __repr__(self) -> str:
        return (f"<Bundle v{self.version} for {self.describe_target()} signer={self.signer[:16]}... "
                f"files={[f.name for f in self.files]} missing={self.missing}>")


def is_bundle(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def referenced_files(config: Config) -> list[str]:
    """The files a configuration reads, relative to its folder."""
    return [config.notice.audio, *config.geofence.communes]


def _refusal(exc: ConfigError) -> BundleError:
    """A configuration that fails its check: file-missing when a file it references is
    not found, config-invalid otherwise."""
    code = "file-missing" if any("not found" in p for p in exc.problems) else "config-invalid"
    return BundleError(code, "\n".join(exc.problems))


def _check_name(name: str, where: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or any(p in (".", "..") for p in name.split("/")):
        raise BundleError("bad-format", f"{where}: file name {name!r} must be a relative path without '..'")
    if name == INSTALLED_NAME:
        raise BundleError("bad-format", f"{where}: file name {name!r} is reserved for the bundle itself")


def build_bundle(config_path: str | Path, key: Ed25519PrivateKey, version: int, *,
                 device: str | None = None, fleet: str | None = None, notice_encoding: str = "opus",
                 created: datetime | None = None) -> bytes:
    """Sign the configuration at ``config_path`` and every file it references."""
    config_path = Path(config_path)
    if (device is None) == (fleet is None):
        raise BundleError("bad-format", "a bundle targets exactly one of a device or a fleet")
    kind, name = ("device", device) if device is not None else ("fleet", fleet)
    if not _target_name_ok(kind, name):
        raise BundleError("bad-format", f"target {kind} {name!r}: " +
                          (CAMERA_ID_HELP if kind == "device" else "letters, digits, '-' and '_', at most 32"))
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BundleError("bad-format", f"version {version!r}: must be an integer of at least 1")
    try:
        toml = read_bounded(config_path, "config", what=f"{config_path}: configuration")
    except InputError as exc:
        raise BundleError("file-missing", str(exc)) from None
    try:
        # checked as the camera will check it: a bundle is a device configuration
        config = parse_config(toml, str(config_path), config_path.resolve().parent, signed=True)
    except ConfigError as exc:
        raise _refusal(exc) from None
    ended = authorisation_ended(config, (created or datetime.now(UTC)).date())
    if ended:
        raise BundleError("config-invalid", ended)
    if kind == "device" and config.device.camera_id != name:
        raise BundleError("wrong-device", f"{config_path}: [device] camera_id = {config.device.camera_id!r} "
                                          f"but the bundle targets device {name!r}")
    if kind == "fleet" and config.device.fleet != name:
        raise BundleError("wrong-fleet", f"{config_path}: [device] fleet = {config.device.fleet!r} "
                                         f"but the bundle targets fleet {name!r}")
    files = [BundleFile(CONFIG_NAME, len(toml), _sha256(toml), data=toml)]
    for ref in dict.fromkeys(referenced_files(config)):
        _check_name(ref, str(config_path))
        try:
            data = read_bounded(config.resolve(ref), "notice" if ref == config.notice.audio else "geojson")
        except InputError as exc:
            raise BundleError("file-missing", str(exc)) from None
        if ref == config.notice.audio and notice_encoding == "opus" and data[:4] == b"RIFF":
            data, rate, channels = encode_opus(data)
            files.append(BundleFile(ref, len(data), _sha256(data), "opus", rate, channels, data))
        else:
            files.append(BundleFile(ref, len(data), _sha256(data), data=data))
    header = {
        "format": FORMAT, "version": version, "target": {"kind": kind, "name": name},
        "created": utc_iso((created or datetime.now(UTC)).timestamp()),
        "signer": public_hex(key), "config": CONFIG_NAME, "files": [f.entry() for f in files],
    }
    header_bytes = canonical(header)
    signature = key.sign(CONTEXT + b"\n" + header_bytes)
    bundle = Bundle(header, header_bytes, signature, tuple(files))
    data = bundle.to_bytes()
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError("oversize", f"bundle of {len(data)} bytes exceeds {MAX_BUNDLE_BYTES}")
    return data


def _check_header(header) -> None:
    def bad(why):
        raise BundleError("bad-format", f"bundle header: {why}")

    if not isinstance(header, dict):
        bad("not a JSON object")
    if header.get("format") != FORMAT:
        bad(f"format {header.get('format')!r} is not {FORMAT}")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        bad(f"version {version!r} is not a positive integer")
    target = header.get("target")
    if (not isinstance(target, dict) or target.get("kind") not in ("device", "fleet")
            or not _target_name_ok(target.get("kind"), target.get("name"))):
        bad(f"target {target!r} is not a device or fleet name")
    if not isinstance(header.get("signer"), str) or not _HEX64.fullmatch(header["signer"]):
        bad("signer is not an Ed25519 public key in hex")
    if not isinstance(header.get("created"), str):
        bad("created is missing")
    if header.get("config") != CONFIG_NAME:
        bad(f"config {header.get('config')!r} is not {CONFIG_NAME!r}")
    files = header.get("files")
    if not isinstance(files, list) or not files:
        bad("no file list")
    seen = set()
    for entry in files:
        if not isinstance(entry, dict):
            bad(f"file entry {entry!r} is not an object")
        _check_name(entry.get("name"), "bundle header")
        if entry["name"] in seen:
            bad(f"file {entry['name']!r} listed twice")
        seen.add(entry["name"])
        size = entry.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            bad(f"file {entry['name']!r}: size {size!r}")
        if size > MAX_BUNDLE_BYTES:
            raise BundleError("oversize", f"file {entry['name']!r} of {size} bytes exceeds {MAX_BUNDLE_BYTES}")
        if not isinstance(entry.get("sha256"), str) or not _HEX64.fullmatch(entry["sha256"]):
            bad(f"file {entry['name']!r}: sha256 {entry.get('sha256')!r}")
        if entry.get("encoding") not in ENCODINGS:
            bad(f"file {entry['name']!r}: encoding {entry.get('encoding')!r} not one of {ENCODINGS}")
        if entry["encoding"] == "opus" and not (
                entry.get("rate") in (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
                and entry.get("channels") in (1, 2)):
            bad(f"file {entry['name']!r}: opus needs a sample rate and 1 or 2 channels")
    if files[0]["name"] != CONFIG_NAME:
        bad(f"the first file must be {CONFIG_NAME!r}")


def read_bundle(data: bytes) -> Bundle:
    """Parse a bundle's structure and check every present file against its signed hash;
    then check the signature (by the key the header names: trust is decided by the caller)."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError("oversize", f"bundle of {len(data)} bytes exceeds {MAX_BUNDLE_BYTES}")
    if not is_bundle(data):
        raise BundleError("bad-format", "does not start with the pieton bundle magic 'PIETONB1'")
    if len(data) < len(MAGIC) + 4:
        raise BundleError("bad-format", "truncated before the header")
    (length,) = struct.unpack_from(">I", data, len(MAGIC))
    start = len(MAGIC) + 4
    if start + length + 64 > len(data):
        raise BundleError("bad-format", f"truncated: header of {length} bytes and signature do not fit")
    header_bytes = data[start:start + length]
    try:
        header = loads_strict(header_bytes, "bundle header")
    except InputError as exc:
        raise BundleError("bad-format", str(exc)) from None
    _check_header(header)
    signature = data[start + length:start + length + 64]
    pos = start + length + 64
    files = []
    for entry in header["files"]:
        if pos >= len(data):
            raise BundleError("bad-format", f"truncated before file {entry['name']!r}")
        flag = data[pos]
        pos += 1
        content = None
        if flag == 1:
            content = data[pos:pos + entry["size"]]
            if len(content) != entry["size"]:
                raise BundleError("bad-format", f"truncated inside file {entry['name']!r}")
            pos += entry["size"]
            if _sha256(content) != entry["sha256"]:
                raise BundleError("file-altered", f"file {entry['name']!r} does not match its signed SHA-256")
        elif flag != 0:
            raise BundleError("bad-format", f"bad presence byte {flag} before file {entry['name']!r}")
        files.append(BundleFile(entry["name"], entry["size"], entry["sha256"], entry["encoding"],
                                entry.get("rate"), entry.get("channels"), content))
    if pos != len(data):
        raise BundleError("bad-format", f"{len(data) - pos} unexpected bytes after the last file")
    if not verify_signature(bytes.fromhex(header["signer"]), signature, CONTEXT + b"\n" + header_bytes):
        raise BundleError("bad-signature", f"signature by {header['signer'][:16]}... does not verify")
    return Bundle(header, header_bytes, signature, tuple(files))


def fill_from(bundle: Bundle, store) -> Bundle:
    """Fill the files a thin transfer left out from ``store(sha256) -> bytes | None``
    (the files the device already holds), checking each by hash."""
    files = []
    for f in bundle.files:
        if f.data is None:
            content = store(f.sha256)
            if content is None or _sha256(content) != f.sha256:
                raise BundleError("file-missing", f"file {f.name!r} is neither in the bundle nor on the device")
            f = replace(f, data=content)
        files.append(f)
    return replace(bundle, files=tuple(files))


RUNNING = "the running configuration"
OWN = "this bundle's own configuration"
FIRST_BUNDLE = ("a camera's first bundle must list its own signer in [keys] technicians: "
                "`pieton config init DIR --technician-key KEY` writes it")


def check_trust(bundle: Bundle, trusted: list[str], revoked: list[str] = (), *, where: str = RUNNING) -> None:
    """The bundle's signer is among ``trusted``, the technician keys of ``where``."""
    if bundle.signer in trusted:
        return
    if bundle.signer in revoked:
        raise BundleError("revoked-signer", f"signer {bundle.signer[:16]}... was revoked by the running "
                                            "configuration")
    if not trusted:
        hint = (FIRST_BUNDLE if where == OWN else "a camera with no technician key takes its first bundle "
                "installed with the daemon (/etc/pieton/pieton.bundle), not flashed; " + FIRST_BUNDLE)
        raise BundleError("unknown-signer", f"{where} trusts no technician key: {hint}")
    hint = f" ({FIRST_BUNDLE})" if where == OWN else ""
    raise BundleError("unknown-signer", f"signer {bundle.signer[:16]}... is not in [keys] technicians of "
                                        f"{where}{hint}")


def check_target(bundle: Bundle, device_id: str, fleet: str) -> None:
    kind, name = bundle.target
    if kind == "device" and name != device_id:
        raise BundleError("wrong-device", f"bundle targets device {name!r}, this is {device_id!r}")
    if kind == "fleet" and name != fleet:
        raise BundleError("wrong-fleet", f"bundle targets fleet {name!r}, this camera is in {fleet!r}")


def check_version(bundle: Bundle, running_version: int) -> None:
    if bundle.version <= running_version:
        raise BundleError("not-newer", f"version {bundle.version} is not newer than {running_version} "
                                       "(replay or rollback)")


def materialise(bundle: Bundle, directory: str | Path) -> Config:
    """Write the bundle's files under ``directory`` (which must exist) and check the
    configuration they make. Returns the checked Config, whose digest is the bundle's."""
    directory = Path(directory)
    if bundle.missing:
        raise BundleError("file-missing", f"files not in the bundle: {', '.join(bundle.missing)}")
    for f in bundle.files:
        try:
            content = f.installed_bytes()
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad bundle
            raise BundleError("bad-format", f"file {f.name!r} does not decode as {f.encoding}: {exc}") from None
        path = directory / f.name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        except (NotADirectoryError, IsADirectoryError, FileExistsError):
            raise BundleError("bad-format", f"file {f.name!r} clashes with another file's folder") from None
    (directory / INSTALLED_NAME).write_bytes(bundle.to_bytes())
    toml = bundle.files[0].data
    source = f"bundle v{bundle.version} ({bundle.describe_target()}) {CONFIG_NAME}"
    try:
        config = parse_config(toml, source, directory, signed=True)
    except ConfigError as exc:
        raise _refusal(exc) from None
    listed = {f.name for f in bundle.files}
    absent = [ref for ref in referenced_files(config) if ref not in listed]
    if absent:
        raise BundleError("file-missing", f"{source}: references {', '.join(absent)} not in the bundle")
    return replace(config, digest=bundle.digest)
