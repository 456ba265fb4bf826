"""The cameras: enrolled, retired, last offload, what they hold in the vault, quarantine,
and the recordings soon erased (the purge's rule, holds apart)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from tools.desk.health import OFFLOAD_DAYS, retired_cameras
from tools.desk.sessions import author
from tools.vault.layout import parse_time
from tools.vault.logs import DAY
from tools.vault.retention import retention_ends

SOON_DAYS = 3
RETIRED = {"lost": "perdue", "stolen": "volée", "broken": "hors d'usage"}


def camera_lines(vault) -> tuple[list[dict], list[dict]]:
    now = vault.now()
    lines = {camera: {"camera": camera, "enrolled": parse_time(at), "last_offload": None, "stored": 0,
                      "quarantined": 0} for camera, _key, at in vault.index.cameras()}
    soon = []
    rows = vault.index.recordings(state="stored")
    ends = retention_ends(vault, rows)
    for row in rows:
        line = lines.setdefault(row.camera_id, {"camera": row.camera_id, "enrolled": None, "last_offload": None,
                                                "stored": 0, "quarantined": 0})
        line["stored"] += 1
        line["last_offload"] = max(line["last_offload"] or 0.0, row.ingested_at)
        end = ends[row.recording_id]
        if end - now < SOON_DAYS * DAY and not vault.index.holds(row.recording_id):
            soon.append({"row": row, "end": end})
    for _folder, _rid, camera, _at, _problems in vault.index.quarantined():
        if camera in lines:
            lines[camera]["quarantined"] += 1
    retired = retired_cameras(vault)
    for line in lines.values():
        gone = retired.get(line["camera"])
        line["retired"] = (RETIRED.get(gone.get("reason"), str(gone.get("reason"))), parse_time(gone["at"])) \
            if gone and isinstance(gone.get("at"), str) else None
        line["late"] = not line["retired"] and (line["last_offload"] is None
                                                or now - line["last_offload"] > OFFLOAD_DAYS * DAY)
    soon.sort(key=lambda s: s["end"])
    return sorted(lines.values(), key=lambda line: line["camera"]), soon


async def cameras_page(desk, request, session, form):
    def read():
        with desk.vault.open(author(session)) as vault:
            return camera_lines(vault)
    lines, soon = await run_in_threadpool(read)
    return desk.page(request, "cameras.html", lines=lines, soon=soon, soon_days=SOON_DAYS)


ROUTES = [("/cameras", cameras_page, ["GET"], True)]
