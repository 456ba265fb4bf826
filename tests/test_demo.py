"""`pieton demo` (what `make run` runs), end to end at a small video size: the patrol,
then the vault's offload, a judicial extraction that ffprobe reads, and the register."""

import json
import subprocess

from tests.conftest import SMALL_VIDEO, read_jsonl, write_config
from tools.cli import main as pieton


def test_demo_patrol_to_vault_extraction(tmp_path, capsys):
    config = write_config(tmp_path / "cfg", SMALL_VIDEO)
    assert pieton(["demo", "--state-dir", str(tmp_path / "demo"), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Recordings: 3" in out and "Refused starts: 1" in out
    assert "3 recording(s) offloaded from CAM-SIM-001 and verified" in out
    assert "0 quarantined" in out
    (mp4,) = (tmp_path / "demo" / "exports").glob("*.mp4")
    probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                                       "-of", "json", str(mp4)], capture_output=True, text=True,
                                      check=True).stdout)
    assert sorted(s["codec_name"] for s in probe["streams"]) == ["aac", "h264"]
    register = read_jsonl(tmp_path / "demo" / "police" / "register.jsonl")
    assert any(line.get("purpose") == "judicial" for line in register)


def test_demo_keeps_only_its_last_folder(tmp_path, monkeypatch):
    from tools import demo
    monkeypatch.setattr(demo, "DEFAULT_ROOT", tmp_path / "pieton-demo")
    first = demo._fresh_default_root()
    (first / "old-run").mkdir()
    second = demo._fresh_default_root()
    assert second == first and not (second / "old-run").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pieton-demo"]


def test_demo_never_removes_a_folder_it_did_not_make(tmp_path, monkeypatch):
    import pytest

    from tools import demo
    mine = tmp_path / "pieton-demo"
    (mine / "precious").mkdir(parents=True)
    monkeypatch.setattr(demo, "DEFAULT_ROOT", mine)
    with pytest.raises(SystemExit, match="not a demo folder"):
        demo._fresh_default_root()
    assert (mine / "precious").is_dir()


def test_demo_shows_each_event_while_it_plays(tmp_path, capsys):
    config = write_config(tmp_path / "cfg", SMALL_VIDEO)
    assert pieton(["demo", "--state-dir", str(tmp_path / "demo"), "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    events = [line for line in lines if line.startswith("  [") and "s]" in line]
    assert any("double_press" in line for line in events) and any("hold" in line for line in events)
    assert lines.index(events[-1]) < next(i for i, line in enumerate(lines) if line.startswith("Recordings:"))
