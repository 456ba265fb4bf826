"""A readable account of a scenario: each recording, its reason, the notice given or
skipped, start and stop, bookmarks, refusals, and what the lights and motor did."""

from __future__ import annotations

import datetime as dt

from recorder.lapses import visual_signal_spans
from recorder.notice import describe as describe_notice


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S.%f")[:-4]


def recordings(player) -> list[dict]:
    """Every recording the scenario's daemons made, in order, with wall times."""
    rows = []
    for daemon in player.daemons:
        wall = daemon.sessions.wall_at if daemon.sessions else (lambda t: t)
        for rec in daemon.machine.history:
            writer = getattr(rec.session, "writer", None)
            rows.append({"id": rec.session.id, "reason": rec.reason, "notice": rec.notice,
                         "start": wall(rec.started), "stop": wall(rec.stopped) if rec.stopped else None,
                         "stop_reason": rec.stop_reason, "bookmarks": [wall(b) for b in rec.bookmarks],
                         "segments": getattr(writer, "segments", None),
                         "pre_event_s": getattr(writer, "static", {}).get("pre_event_s"),
                         "lapses": visual_signal_spans(getattr(writer, "static", {}))})
    return rows


def print_summary(player, out=print) -> None:
    scenario = player.scenario
    out(f"Scenario: {scenario.name} ({scenario.duration:.0f} s simulated from "
        f"{dt.datetime.fromtimestamp(scenario.start_epoch, dt.UTC):%Y-%m-%d %H:%M:%S} UTC)")
    rows = recordings(player)
    out(f"\nRecordings: {len(rows)}")
    for row in rows:
        length = (row["stop"] - row["start"]) if row["stop"] else 0.0
        out(f"  {row['id']}")
        out(f"    reason     {row['reason']}")
        out(f"    notice     {describe_notice(row['notice'])}")
        out(f"    start      {_utc(row['start'])} UTC   stop {_utc(row['stop']) if row['stop'] else '-'} UTC"
            f"   ({length:.1f} s, {row['stop_reason']})")
        if row["segments"] is not None:
            pre = row["pre_event_s"] or 0.0
            out(f"    media      {row['segments']} segments, {length + pre:.1f} s "
                f"(of which {pre:.1f} s pre-event, video only)")
        if row["bookmarks"]:
            out("    bookmarks  " + ", ".join(f"{_utc(b)} UTC" for b in row["bookmarks"]))
        for lapse in row["lapses"]:  # CSI L241-2: the red light had failed
            out("    " + lapse.in_words(lambda t: f"{_utc(t)} UTC"))
    refusals = [(d, t, why) for d in player.daemons for t, why in d.machine.refusals]
    if refusals:
        out(f"\nRefused starts: {len(refusals)}")
        for daemon, t, why in refusals:
            out(f"  {_utc(daemon.sessions.wall_at(t))} UTC  {why}")
    recovered = [r for d in player.daemons for r in d.recovered]
    if recovered:
        out(f"\nRecovered after a power cut: {len(recovered)}")
        for report in recovered:
            out(f"  {report}")
    out("\nLights and motor (times UTC):")
    for daemon in player.daemons:
        for line in timeline(daemon):
            out("  " + line)
    if player.failures:
        out("\nExpectations that failed:")
        for failure in player.failures:
            out("  " + failure)


def timeline(daemon) -> list[str]:
    """The lights' and motor's changes, with haptic patterns folded into one line each."""
    lines = []
    wall = daemon.sessions.wall_at
    last_pattern = None
    last_error = None
    for change in daemon.machine.feedback.timeline:
        if change.device == "haptic":
            if change.on and (last_pattern is None or last_pattern[1] != change.why
                              or change.time - last_pattern[0] > 1.5):
                lines.append(f"{_utc(wall(change.time))}  haptic  {change.why.replace('_', ' ')}")
                last_pattern = (change.time, change.why)
            continue
        if change.why.startswith("error"):
            if change.why != last_error:
                lines.append(f"{_utc(wall(change.time))}  {change.device:6}  flashes  {change.why}")
            last_error = change.why
            continue
        last_error = None
        lines.append(f"{_utc(wall(change.time))}  {change.device:6}  {'ON ' if change.on else 'off'}  {change.why}")
    return lines
