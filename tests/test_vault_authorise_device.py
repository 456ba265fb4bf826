"""Every recording carries the prefect's arrêté it was made under (CSI R241-8): the daemon
states it in the signed opened line (read by the vault without decrypting) and in the
encrypted metadata; the vault recognises it at ingest and the extraction report shows it."""

from recorder.evidence.age import load_identities
from recorder.evidence.format import parse_utc
from recorder.evidence.metadata import decrypt_metadata
from recorder.summary import recordings
from tests.conftest import SMALL_VIDEO, read_jsonl
from tests.patrol_support import play_patrol
from tools.vault import authorisation
from tools.vault.extract import Request, extract
from tools.vault.ingest import ingest
from tools.vault.vault import Vault, init_vault


def test_the_daemon_writes_the_arrete_into_each_recording_and_the_vault_shows_it(tmp_path, chief):
    gestures = [{"at": 2, "do": "press"}, {"at": 6, "do": "hold", "seconds": 3.5}]
    player, _config = play_patrol(tmp_path, chief[1], gestures, 12, settings={**SMALL_VIDEO, "authorisation": {
        "arrete": "2026-DSC-0412", "communes": ["71014"]}})
    rows = recordings(player)
    assert len(rows) == 1
    folder = tmp_path / "device" / "spool" / rows[0]["id"]
    named = {"arrete": "2026-DSC-0412", "communes": ["71014"], "until": None}
    opened = read_jsonl(folder / "manifest.jsonl")[0]
    assert opened["event"] == "opened" and opened["authorisation"] == named
    identities = load_identities(chief[0])
    for meta in sorted(folder.glob("*.meta.age")):
        assert decrypt_metadata(meta, identities)["recording"]["authorisation"] == named

    (tmp_path / "police").mkdir()
    (tmp_path / "out").mkdir()
    init_vault(tmp_path / "vault", [chief[1]], tmp_path / "police" / "r.jsonl")
    recorded_at = parse_utc(opened["started_at"])
    with Vault.open(tmp_path / "vault", clock=lambda: recorded_at + 3600) as vault:
        authorisation.authorise(vault, "2026-DSC-0412", "12/03/2026", 1, ["71014"])
        authorisation.enrol(vault, opened["camera_id"], opened["device_key"])
        report = ingest(vault, tmp_path / "device" / "spool", progress=False)
        assert report.stored == [rows[0]["id"]] and not report.notes, report.notes
        result = extract(vault, Request([rows[0]["id"]], "judicial", "OPJ Durand", "Parquet",
                                        tmp_path / "out" / "pv.mp4"), identities)
    assert result.report["recordings"][0]["authorisation"] == named
    assert "Arrêté préfectoral : 2026-DSC-0412, communes 71014" in result.html_path.read_text()
