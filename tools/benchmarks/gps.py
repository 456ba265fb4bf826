"""`pieton bench gps`: our NMEA layer against gpsd and against pynmea2.

1. Agreement with gpsd: every real receiver log in tests/data/gps-logs (copied from
   gpsd's regression tests, with their licence) is fed through drivers/nmea; after each sentence gpsd
   echoes in its expected output (`.chk`), our merged fix must equal the TPV report that
   follows: fix mode, lat/lon within 1e-6 degree, time where gpsd has one. Sentences gpsd
   dropped must be rejected by ours.
2. Throughput: sentences per second through our whole layer (framing, checks, splitting
   into fields - our own split for plain position sentences, pynmea2 for the rest - and
   merge into fixes) against pynmea2.parse alone on the same sentences, in the same run.
   Target: ours costs at most 1.5x the parser.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from datetime import datetime
from pathlib import Path

import pynmea2

from drivers.nmea import NmeaReader

DEFAULT_LOG_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "gps-logs"
COST_TARGET = 1.5


def log_dir() -> Path:
    return Path(os.environ.get("PIETON_GPS_LOGS", DEFAULT_LOG_DIR))


def shared_logs() -> list[Path]:
    folder = log_dir()
    return sorted(p for p in folder.glob("*.log") if p.with_name(p.name + ".chk").is_file())


def receiver_log(name: str) -> Path:
    """One of the real receiver logs, by file name."""
    path = log_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"GPS log {name} is not in {log_dir()} (the repository keeps them in "
                                f"tests/data/gps-logs; PIETON_GPS_LOGS overrides)")
    return path


def _chk_events(chk: Path) -> list[tuple[str, object]]:
    events: list[tuple[str, object]] = []
    for line in chk.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line.startswith(("$", "!")):
            events.append(("sentence", line))
        elif line.startswith('{"class":"TPV"'):
            events.append(("tpv", json.loads(line)))
    return events


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z") if when else None


def agreement(log: Path) -> dict:
    """Compare our merge with gpsd's expected output for one log."""
    reader = NmeaReader(comments=True)
    ours: list[tuple[str, object]] = []
    reader.on_sentence = lambda text: ours.append((text, reader.current()))
    reader.feed(log.read_bytes())
    reader.flush()
    events = _chk_events(log.with_name(log.name + ".chk"))
    echoed = [e[1] for e in events if e[0] == "sentence"]
    accepted = {text for text, _ in ours}
    sentences = _log_sentences(log)
    echoed_set = set(echoed)
    dropped_by_gpsd = [line for line in sentences if line not in echoed_set]
    compared = matching = 0
    mismatches: list[dict] = []
    missing = [text for text in echoed if text not in accepted]
    index = 0
    current = None
    for kind, value in events:
        if kind == "sentence":
            while index < len(ours) and ours[index][0] != value:
                index += 1
            current = ours[index][1] if index < len(ours) else None
            sentence_text = value
            index += 1
            continue
        if current is None:
            continue
        tpv = value
        compared += 1
        problems = []
        if current.mode != tpv.get("mode"):
            problems.append(f"mode {current.mode} != {tpv.get('mode')}")
        if "lat" in tpv:
            if current.lat is None or abs(current.lat - tpv["lat"]) > 1e-6 or abs(current.lon - tpv["lon"]) > 1e-6:
                problems.append(f"position {current.lat},{current.lon} != {tpv['lat']},{tpv['lon']}")
        elif current.lat is not None:
            problems.append(f"position {current.lat},{current.lon} where gpsd has none")
        if "time" in tpv:
            if _iso(current.time) != tpv["time"]:
                problems.append(f"time {_iso(current.time)} != {tpv['time']}")
        elif current.time is not None:
            problems.append(f"time {_iso(current.time)} where gpsd has none")
        if problems:
            mismatches.append({"after": sentence_text, "problems": problems})
        else:
            matching += 1
    rejected_texts = set(sentences) - accepted
    return {
        "log": log.name, "compared": compared, "matching": matching,
        "mismatches": mismatches,
        "dropped_by_gpsd": len(dropped_by_gpsd),
        "dropped_by_gpsd_rejected_by_us": sum(1 for s in dropped_by_gpsd if s not in accepted),
        "accepted_by_gpsd_rejected_by_us": missing,
        "rejected_by_us": len(rejected_texts),
        "stats": reader.stats.as_dict(),
    }


def _log_sentences(log: Path) -> list[str]:
    """Sentences as gpsd frames them: each '$' starts one, even mid-line."""
    out = []
    text = log.read_bytes().decode("ascii", errors="replace").replace("\r", "\n")
    for line in text.split("\n"):
        if not line.strip() or line.startswith("#"):
            continue
        for i, part in enumerate(line.split("$")):
            if i == 0 and not part:
                continue
            out.append("$" + part.strip())
    return out


def throughput(logs: list[Path], repeat: int) -> dict:
    """Sentences per second: our whole layer (bytes in, fixes out) against pynmea2.parse
    alone on the same sentences already split into lines, and against pynmea2's own
    stream reader on the same bytes. The three run back to back ``repeat`` times; rates
    are the best run of each, ratios the median of the back-to-back ratios (robust to a
    machine whose load changes during the run)."""
    data = b"".join(p.read_bytes() for p in logs)
    text = data.decode("ascii", "replace").replace("\r", "")
    sentences = _all_sentences(logs)
    ours, parser, stream = [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        for line in sentences:
            try:
                pynmea2.parse(line, check=True)
            except pynmea2.ParseError:
                pass
        parser.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _msg in pynmea2.NMEAStreamReader(errors="ignore").next(text):
            pass
        stream.append(time.perf_counter() - start)
        start = time.perf_counter()
        reader = NmeaReader(comments=True)
        reader.feed(data)
        reader.flush()
        ours.append(time.perf_counter() - start)
    n = len(sentences)
    return {"sentences": n, "ours_per_s": round(n / min(ours)), "pynmea2_per_s": round(n / min(parser)),
            "pynmea2_stream_per_s": round(n / min(stream)),
            "cost_ratio": round(statistics.median(o / p for o, p in zip(ours, parser, strict=True)), 3),
            "cost_ratio_vs_stream": round(statistics.median(o / s for o, s in zip(ours, stream, strict=True)), 3),
            "target_ratio": COST_TARGET}


def _all_sentences(logs: list[Path]) -> list[str]:
    out = []
    for log in logs:
        out.extend(_log_sentences(log))
    return out


def run(args) -> dict:
    logs = shared_logs()
    if not logs:
        print(f"no GPS logs in {log_dir()} (the repository keeps them in tests/data/gps-logs)")
        return {"error": "no logs"}
    total_compared = total_matching = 0
    per_log = {}
    for log in logs:
        result = agreement(log)
        total_compared += result["compared"]
        total_matching += result["matching"]
        per_log[log.name] = {k: result[k] for k in ("compared", "matching", "dropped_by_gpsd",
                                                    "dropped_by_gpsd_rejected_by_us")}
        print(f"{log.name:24s} fixes compared {result['compared']:4d}  matching {result['matching']:4d}  "
              f"gpsd dropped {result['dropped_by_gpsd']}, we rejected {result['dropped_by_gpsd_rejected_by_us']}"
              f"  (our rejections: {result['stats']['rejected']})")
        for bad in result["mismatches"][:3]:
            print(f"    after {bad['after'][:60]}: {'; '.join(bad['problems'])}")
    print(f"agreement with gpsd: {total_matching}/{total_compared} fixes match")
    repeat = 5 if getattr(args, "quick", False) else 41
    speed = throughput(logs, repeat)
    print(f"throughput over {speed['sentences']} sentences (best of {repeat} runs): ours {speed['ours_per_s']}/s "
          f"(bytes in, fixes out); pynmea2.parse alone {speed['pynmea2_per_s']}/s (lines already split); "
          f"cost ratio (median of back-to-back runs) {speed['cost_ratio']} (target <= {COST_TARGET})")
    print(f"  vs pynmea2's own stream reader on the same bytes {speed['pynmea2_stream_per_s']}/s: "
          f"cost ratio {speed['cost_ratio_vs_stream']}")
    return {"fixes_compared": total_compared, "fixes_matching": total_matching, "logs": per_log, **speed}
