"""`pieton bench soak`: shifts of a camera and its vault, with SIGKILLs at random points.

Each shift (default 30 shifts of 10 hours of virtual time, `--shifts N --hours H --seed S`)
plays the camera's day through the daemon on simulated hardware (recorder.scenario, as
`pieton simulate` does), media really encoded, encrypted and sealed at 320x240 5 fps: every
gesture, bookmarks, GPS losses and jumps, the battery running down, a filling disk,
flashed bundles, the shift's assignment. The daemon is a child process killed (SIGKILL) in
a phase of its work (recording, sealing, applying a configuration, applying the vault's
receipts at start) and restarted on the rest of the shift, as its systemd unit restarts
it. After each shift the camera is docked: `pieton verify` on its spool, then `pieton vault
ingest`, `vault purge` (at the shift's date) and, every fifth shift, `vault extract`, each
a child killed at a random instant on some runs and run again, as the chief would.

It prints recordings made (the device journal's signed `recording opened` lines), verified
(stored by the vault after its checks) and lost (made and never stored, or a recovery that
kept less than a `progress` line had declared durable: the evidence format's durable-length
rule), whether every chain is intact (device journal, manifests, vault journal: `pieton
verify`, ingest, `vault verify`), the tracebacks seen, and the daemon's memory slope (RSS
over virtual time, per process life after its warm-up). Targets: 0 lost, 0 verification
failures, no memory growth.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from drivers.signer import KEYS_DIR, FileSigner
from recorder.evidence.format import JOURNAL_FILE, MANIFEST_FILE, parse_recording_id
from tools.benchmarks._soak_plan import Shift, Workspace, plan_shift, resume, scenario_toml
from tools.benchmarks._soak_procs import PHASES, pieton, run_daemon, slope_mb_per_hour
from tools.cli import main as pieton_main

GROWTH_LIMIT_MB_H = 2.0        # a slope above this over a life of hours is a leak
# A life's warm-up is not judged: its first hour, or first third if longer (imports, the
# encoder, caches and the allocator's arenas settle; a 3-hour life measured here grew
# 84 -> 110 MB in its first 1.4 h, then 0.5 MB in the next 1.6 h).
WARMUP_S = 3600.0
JUDGED_H = 1.0                 # a slope is judged over at least this many hours after the warm-up
VAULT_KILL_CHANCE = 0.5
BUDGET_S = 3600.0              # the target: the whole campaign within an hour of wall time


def _say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Figures:
    made: set[str] = field(default_factory=set)
    verified: set[str] = field(default_factory=set)
    quarantined: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    beyond_durable: list[str] = field(default_factory=list)
    verify_failures: dict[str, str] = field(default_factory=dict)   # recording -> first problem seen
    journal_problems: list[str] = field(default_factory=list)
    vault_problems: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    kills: dict[str, int] = field(default_factory=dict)
    lives: int = 0
    slopes: list[tuple[float, float]] = field(default_factory=list)   # (MB/h, hours judged)
    purged: set[str] = field(default_factory=set)
    extracted: int = 0
    refusals: int = 0

    def kill(self, what: str) -> None:
        self.kills[what] = self.kills.get(what, 0) + 1

    @property
    def lost(self) -> list[str]:
        return sorted(self.made - self.verified) + self.beyond_durable


class Campaign:
    def __init__(self, root: Path, *, hours: float, seed: int, kills_per_shift: int, out,
                 phases: tuple[str, ...] = tuple(PHASES)):
        self.ws = Workspace.create(root)
        self.hours = hours
        self.rng = random.Random(seed)
        self.kills_per_shift = kills_per_shift
        self.phases = phases
        self.out = out
        self.fig = Figures()
        self.enrolled = False
        # From tomorrow: the vault judges retention on its own clock, so the campaign's
        # month and a half lies ahead of it, and `vault purge --now` walks through it.
        today = dt.datetime.now(dt.UTC).replace(hour=6, minute=0, second=0, microsecond=0)
        self.first_day = today + dt.timedelta(days=1)

    # -- the camera's shift ------------------------------------------------------------------
    def play(self, number: int) -> Shift:
        ws, fig = self.ws, self.fig
        shift = plan_shift(number, self.hours, self.rng, self.first_day)
        assignment = ws.assignment(number, shift.start, self.hours)
        for event in shift.events:
            if event["do"] == "assign":
                event["assignment"] = str(assignment)
            elif event["do"] == "flash":
                event["bundle"] = str(ws.bundle(shift.flash, pieton_main))
        targets = self._kill_targets(shift)
        offset, events, lives = 0.0, list(shift.events), 0
        log = ws.root / "logs" / f"shift-{number:03d}.stderr"
        log.parent.mkdir(exist_ok=True)
        while True:
            scenario = ws.root / "scenarios" / f"shift-{number:03d}-{lives}.toml"
            scenario.parent.mkdir(exist_ok=True)
            scenario.write_text(scenario_toml(f"soak shift {number}", shift.start + offset,
                                              shift.duration - offset, events))
            kill = targets[lives] if lives < len(targets) else None
            life = run_daemon(ws, scenario, offset, kill, self.rng, log)
            lives += 1
            fig.lives += 1
            with open(ws.root / "memory.jsonl", "a") as f:     # every sample, to look at a slope again
                f.write(json.dumps({"shift": number, "life": lives, "samples": life.samples}) + "\n")
            span = life.samples[-1][0] - life.samples[0][0] if life.samples else 0.0
            judged = slope_mb_per_hour(life.samples, min(max(WARMUP_S, span / 3), shift.duration / 4))
            if judged is not None:
                fig.slopes.append(judged)
            if life.killed:
                fig.kill(f"daemon: {life.killed}")
                # Restarted as its unit restarts it, even in the shift's last minute (a
                # life of a second then): its recovery runs before the camera is docked.
                offset, events = resume(shift, life.reached)
                continue
            if not life.ended:
                fig.tracebacks.append(f"shift {number}: the daemon exited with {life.code} before the "
                                      f"shift's end (at {life.reached:.0f} s)")
            fig.journal_problems += [f"shift {number}: scenario: {f}" for f in life.failures]
            break
        self._tracebacks(log.read_text(errors="replace"), f"shift {number} daemon")
        return shift

    def _kill_targets(self, shift: Shift) -> list[str]:
        phases = [p for p in ("recording", "sealing", "receipts") if p in self.phases]
        phases += ["configuration"] if shift.flash and "configuration" in self.phases else []
        if not phases:
            return []
        targets = [self.rng.choice(phases) for _ in range(self.kills_per_shift)]
        if "receipts" in targets:    # receipts are applied at the shift's first start only
            targets.remove("receipts")
            targets.insert(0, "receipts")
        return targets

    # -- the dock ------------------------------------------------------------------------------
    def dock(self, shift: Shift, *, inject_loss: bool = False) -> None:
        ws, fig = self.ws, self.fig
        if inject_loss:
            self._delete_one_recording()
        self._journal_made()
        self._check_durable()
        device_key = FileSigner(ws.device / KEYS_DIR / "device-signing.key").public_key_hex
        check = pieton(["verify", str(ws.spool), "--device-key", device_key, "--json"])
        self._verify_report(check, shift.number)
        if not self.enrolled:
            self._vault_command(["vault", "enrol", str(ws.vault), "--camera", "CAM-SIM-001", "--key", device_key,
                                 "--identity", str(ws.identity)],
                                killable=False)
            self.enrolled = True
        ingest = self._vault_command(["vault", "ingest", str(ws.vault), "--from", str(ws.spool), "--no-progress",
                                      "--identity", str(ws.identity)])     # the chief, a designated person
        for line in ingest.out.splitlines():
            word, _, rest = line.partition(" ")
            rid = rest.strip().split(" ")[-1] if word == "already" else rest.strip().split(" ")[0].rstrip(":")
            if word in ("stored", "already"):
                fig.verified.add(rid)
            elif word == "QUARANTINED":
                fig.quarantined.add(rid)
                fig.verify_failures.setdefault(rid, f"shift {shift.number}: ingest quarantined {rid}")
            elif word == "MISSING":
                fig.missing.add(rid)
            elif word == "JOURNAL":
                fig.journal_problems.append(f"shift {shift.number}: ingest: {rest.strip()}")
        when = dt.datetime.fromtimestamp(shift.start + shift.duration + 3600, dt.UTC).isoformat()
        purge = self._vault_command(["vault", "purge", str(ws.vault), "--now", when, "--identity", str(ws.identity)])
        for line in purge.out.splitlines() + ingest.out.splitlines():   # "erased RID", "erased (retention) RID"
            words = line.split()
            if words and words[0] == "erased" and parse_recording_id(words[-1]):
                fig.purged.add(words[-1])
        if shift.number % 5 == 0:
            self._extract(shift)

    def _vault_command(self, args: list[str], killable: bool = True):
        """A vault command, killed at a random instant on some runs, then run again to its end."""
        what = args[1]
        if killable and self.rng.random() < VAULT_KILL_CHANCE:
            killed = pieton(args, kill_after=self.rng.uniform(0.3, 3.0))
            self._tracebacks(killed.err, f"vault {what} (before its kill)")
            if killed.killed_after is not None:
                self.fig.kill(f"vault: {what}")
            elif killed.code not in (0, 1):
                self.fig.vault_problems.append(f"vault {what} exited {killed.code}: {killed.err.strip()[-300:]}")
        result = pieton(args)
        self._tracebacks(result.err, f"vault {what}")
        if result.code not in (0, 1):
            self.fig.vault_problems.append(f"vault {what} exited {result.code}: {result.err.strip()[-300:]}")
        return result

    def _extract(self, shift: Shift) -> None:
        ws = self.ws
        day = dt.datetime.fromtimestamp(shift.start, dt.UTC).strftime("%Y%m%d")
        mine = sorted(r for r in self.fig.verified if f"_{day}T" in r)
        if not mine:
            return
        out = ws.root / "exports" / f"shift-{shift.number:03d}.mp4"
        out.parent.mkdir(exist_ok=True)
        args = ["vault", "extract", str(ws.vault), mine[0], "--purpose", "judiciaire", "--requester",
                "OPJ Durand", "--deliver-to", "Parquet d'Autun", "--out", str(out), "--identity", str(ws.identity)]
        if self.rng.random() < VAULT_KILL_CHANCE:
            killed = pieton(args, kill_after=self.rng.uniform(0.3, 3.0))
            self._tracebacks(killed.err, "vault extract (before its kill)")
            if killed.killed_after is not None:
                self.fig.kill("vault: extract")
            out = out.with_name(out.stem + "-again.mp4")
            args[args.index("--out") + 1] = str(out)
        result = pieton(args)
        self._tracebacks(result.err, "vault extract")
        if result.code != 0:
            self.fig.vault_problems.append(f"vault extract {mine[0]} exited {result.code}: {result.err.strip()[-300:]}")
            return
        report = next((w for line in result.out.splitlines() if line.startswith("report: ")
                       for w in [line.split()[1]]), None)
        check = pieton(["vault", "check-report", str(report), str(out), "--vault-key", ws.vault_key])
        if check.code != 0:
            self.fig.vault_problems.append(f"check-report {report}: {check.out.strip()} {check.err.strip()}")
        self.fig.extracted += 1

    # -- what the campaign checks -------------------------------------------------------------
    def _journal_made(self) -> None:
        """Recordings the camera opened, from its journal (signed: `pieton verify` checks it)."""
        journal = self.ws.spool / JOURNAL_FILE
        self.fig.refusals = 0
        for raw in journal.read_bytes().splitlines() if journal.exists() else []:
            try:
                line = json.loads(raw)
            except ValueError:
                continue    # a torn line: pieton verify judges it
            data = line.get("data") if isinstance(line, dict) else None
            if not isinstance(data, dict):
                continue
            # A recording cut before its opened line was durable is in the journal only as recovered.
            started = line.get("event") == "recording opened" or (
                line.get("event") == "recording recovered" and isinstance(data.get("recording_seq"), int))
            if started and isinstance(data.get("recording_id"), str):
                self.fig.made.add(data["recording_id"])
            elif line.get("event") == "recording refused":
                self.fig.refusals += 1

    def _check_durable(self) -> None:
        """A recovered recording keeps at least what its last `progress` line declared durable."""
        for folder in sorted(self.ws.spool.iterdir()):
            if not (parse_recording_id(folder.name) and (folder / MANIFEST_FILE).is_file()):
                continue
            durable: dict[str, int] = {}
            for raw in (folder / MANIFEST_FILE).read_bytes().splitlines():
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if line.get("event") == "progress":
                    durable[line["file"]] = line["durable_bytes"]
                elif line.get("event") == "recovered":
                    for found in line.get("found", []):
                        name, size = found.get("file"), found.get("size")
                        if name in durable and isinstance(size, int) and size < durable[name]:
                            self.fig.beyond_durable.append(f"{folder.name}/{name}: {size} bytes kept, "
                                                           f"{durable[name]} declared durable")

    def _verify_report(self, check, number: int) -> None:
        try:
            report = json.loads(check.out)
        except ValueError:
            self.fig.verify_failures.setdefault(f"verify {number}", f"shift {number}: pieton verify: exit {check.code}: "
                                                                    f"{check.err.strip()[-300:]}")
            return
        for r in report["recordings"]:
            if r.get("problems"):
                reasons = "; ".join(str(p.get("reason", p)) for p in r["problems"])
                self.fig.verify_failures.setdefault(str(r.get("recording")), f"shift {number}: pieton verify: "
                                                                             f"{r.get('recording')}: {reasons[:300]}")
        for p in report["journal_problems"]:
            self.fig.journal_problems.append(f"shift {number}: device journal: {p}")

    def _delete_one_recording(self) -> None:
        """A recording removed behind the camera's back (the test's injected loss)."""
        found = sorted(p for p in self.ws.spool.iterdir() if parse_recording_id(p.name))
        if found:
            shutil.rmtree(found[-1])

    def _tracebacks(self, text: str, where: str) -> None:
        if "Traceback" in text:
            tail = text[text.index("Traceback"):].strip().splitlines()
            self.fig.tracebacks.append(f"{where}: {tail[-1][:300] if tail else 'traceback'}")

    def finish(self) -> None:
        check = pieton(["vault", "verify", str(self.ws.vault)])
        self._tracebacks(check.err, "vault verify")
        if check.code != 0:
            self.fig.vault_problems += [line for line in check.out.splitlines() if line.startswith("PROBLEM")] or [
                f"vault verify exited {check.code}: {check.err.strip()[-300:]}"]
        self.out(f"  vault verify: {check.out.strip().splitlines()[-1] if check.out.strip() else check.err.strip()}")


def campaign(root: Path, *, shifts: int, hours: float, seed: int, kills_per_shift: int = 2,
             inject_loss_at: int | None = None, budget_s: float | None = None, out=None,
             phases: tuple[str, ...] = tuple(PHASES)) -> dict:
    """``budget_s``: no shift is started that would end past this many wall seconds (at the
    pace of the shifts played so far), so the figures are printed within the target time."""
    out = out or _say
    """Run the campaign in ``root`` (a new folder); returns the figures printed."""
    began = time.monotonic()
    c = Campaign(root, hours=hours, seed=seed, kills_per_shift=kills_per_shift, out=out, phases=phases)
    out(f"soak: {shifts} shift(s) of {hours:g} h virtual, seed {seed}, {kills_per_shift} daemon kill(s) "
        f"aimed per shift, vault commands killed with chance {VAULT_KILL_CHANCE}; 320x240 5 fps sealed media")
    played = 0
    for number in range(1, shifts + 1):
        t = time.monotonic()
        if budget_s is not None and played and (t - began) * (played + 1) / played > budget_s:
            out(f"  STOPPED after {played} of {shifts} shifts: the next would end past the wall budget "
                f"of {budget_s:.0f} s")
            break
        shift = c.play(number)
        c.dock(shift, inject_loss=number == inject_loss_at)
        f = c.fig
        out(f"  shift {number:2d}: {len(f.made)} made, {len(f.verified & f.made)} verified, {len(f.lost)} lost, "
            f"{sum(f.kills.values())} kills so far, {len(f.tracebacks)} tracebacks ({time.monotonic() - t:.0f} s)")
        played += 1
    c.finish()
    return report(c.fig, played, hours, time.monotonic() - began, out) | {"shifts_asked": shifts}


def report(f: Figures, shifts: int, hours: float, wall: float, out) -> dict:
    slopes = [s for s, span in f.slopes if span >= JUDGED_H]
    worst = max(slopes) if slopes else None
    memory = (f"not judged (no daemon life with {JUDGED_H:g} h after its warm-up)" if worst is None else
              "no growth" if worst <= GROWTH_LIMIT_MB_H else "GROWTH")
    chains = not (f.journal_problems or f.verify_failures or f.vault_problems)
    lost = f.lost
    out(f"recordings: {len(f.made)} made, {len(f.verified & f.made)} verified, {len(lost)} lost "
        f"(target 0); {len(f.quarantined)} quarantined, {len(f.missing)} reported missing by ingest; "
        f"{f.refusals} starts refused (out of the commune, storage full)")
    for item in lost[:10]:
        out(f"  LOST {item}")
    out(f"verification failures: {len(f.verify_failures)} recording(s) (target 0)")
    for item in list(f.verify_failures.values())[:5]:
        out(f"  {item}")
    out(f"chains: device journal {'intact' if not f.journal_problems else 'BROKEN'}, manifests "
        f"{'intact' if not f.verify_failures else 'BROKEN'}, vault journal and store "
        f"{'intact' if not f.vault_problems else 'PROBLEMS'}")
    for item in (f.journal_problems + f.vault_problems)[:8]:
        out(f"  {item}")
    out(f"kills: {sum(f.kills.values())} ({', '.join(f'{k} {v}' for k, v in sorted(f.kills.items()))}); "
        f"{f.lives} daemon lives; {len(f.purged)} purged past retention, {f.extracted} extracted")
    out(f"tracebacks: {len(f.tracebacks)}")
    for item in f.tracebacks[:8]:
        out(f"  {item}")
    if slopes:
        out(f"memory: daemon RSS slope after warm-up over {len(slopes)} lives: median "
            f"{statistics.median(slopes):+.2f} MB/h, worst {worst:+.2f} MB/h (limit {GROWTH_LIMIT_MB_H} MB/h): {memory}")
    else:
        out(f"memory: {memory}")
    out(f"wall time: {wall:.0f} s for {shifts * hours:g} h of virtual time")
    return {"shifts": shifts, "hours": hours, "made": len(f.made), "verified": len(f.verified & f.made),
            "lost": len(lost), "lost_items": lost, "verification_failures": len(f.verify_failures),
            "chains_intact": chains, "tracebacks": len(f.tracebacks), "kills": dict(f.kills),
            "memory_worst_mb_per_h": None if worst is None else round(worst, 3), "memory": memory,
            "purged": len(f.purged), "extracted": f.extracted, "wall_s": round(wall, 1)}


def run(args) -> dict:
    quick = getattr(args, "quick", False)
    shifts, hours, seed = (getattr(args, name, None) for name in ("shifts", "hours", "seed"))
    shifts = (2 if quick else 30) if shifts is None else shifts
    hours = (0.25 if quick else 10.0) if hours is None else hours
    seed = 0 if seed is None else seed
    if shifts < 1 or not 0 < hours <= 24:
        print(f"pieton bench soak: --shifts {shifts} --hours {hours:g}: at least one shift, of more than 0 "
              "and at most 24 hours", file=sys.stderr)
        raise SystemExit(2)
    root = Path(tempfile.mkdtemp(prefix="pieton-bench-soak-"))
    try:
        return campaign(root / "campaign", shifts=shifts, hours=hours, seed=seed,
                        budget_s=getattr(args, "budget", None) or BUDGET_S)
    finally:
        shutil.rmtree(root, ignore_errors=True)


__all__ = ["campaign", "run", "PHASES"]
