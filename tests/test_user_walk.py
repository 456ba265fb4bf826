"""What the new users stumbled on when they followed the README step by step: the technician's
signed bundle could not be played on the simulated camera, `--help` said nothing of what a
command does, the training sign-off ignored PIETON_IDENTITY, the register showed a search's
filters and period as program text in UTC, and `vault view` left the chief with no way on."""

import argparse
import subprocess
import sys
import textwrap

from vault_support import CAMERA, make_spool

from recorder.cli import simulate
from recorder.evidence.age import generate_identity
from recorder.summary import print_summary
from tools.cli import build_parser, main
from tools.desk.cli import build_config


def _undocumented(parser: argparse.ArgumentParser, name: str) -> list[str]:
    missing = [] if parser.description else [f"{name}: no description"]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                missing += _undocumented(sub, f"{name} {sub_name}")
        elif action.help is None and not isinstance(action, argparse._HelpAction):
            missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}: no help")
    return missing


def test_every_command_help_says_what_it_does_and_what_each_option_is(capsys):
    assert _undocumented(build_parser(), "pieton") == []
    try:
        main(["vault", "hold", "--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    assert "keep a recording past its retention" in out and "pieton vault list" in out


def test_training_sign_off_takes_the_identity_every_other_command_takes(tmp_path, monkeypatch):
    monkeypatch.setenv("PIETON_IDENTITY", str(tmp_path / "chief.age"))
    for command in ("training-approve", "training-reject"):
        extra = ["--reason", "un visage visible"] if command == "training-reject" else []
        args = build_parser().parse_args(["vault", command, str(tmp_path), "--extraction", "X-1", *extra])
        assert args.identity == str(tmp_path / "chief.age")


def _vault_with_a_search(tmp_path, monkeypatch):
    monkeypatch.delenv("PIETON_IDENTITY", raising=False)
    identity, recipient = generate_identity()
    key = tmp_path / "chief.key"
    key.write_text(identity + "\n")
    (tmp_path / "police").mkdir()
    v = str(tmp_path / "vault")
    assert main(["vault", "init", v, "--recipient", recipient, "--register", str(tmp_path / "police" / "r.jsonl")]) == 0
    assert main(["vault", "designate", v, "--name", "Claire Martin", "--matricule", "PM-0042", "--role",
                 "responsable", "--designated-by", "Maire", "--decision", "arrêté 1", "--recipient", recipient,
                 "--identity", str(key)]) == 0
    spool, signer = make_spool(tmp_path, [recipient], recordings=1, segments=2)
    assert main(["vault", "authorise", v, "--arrete", "T-1", "--date", "01/01/2026", "--cameras", "2",
                 "--communes", "71014", "--identity", str(key)]) == 0
    assert main(["vault", "enrol", v, "--camera", CAMERA, "--key", signer.public_key_hex, "--identity", str(key)]) == 0
    assert main(["vault", "ingest", v, "--from", str(spool), "--no-progress", "--identity", str(key)]) == 0
    assert main(["vault", "find", v, "--from", "18/11/2026 00:00", "--to", "19/11/2026 00:00", "--agent", "A-1234",
                 "--reason", "flagrant_delit", "--purpose", "judiciaire", "--requester", "OPJ Durand",
                 "--identity", str(key)]) == 0
    rid = next(p.name for p in spool.iterdir() if p.name.startswith(CAMERA))
    return v, key, rid


def test_the_register_shows_a_search_in_french_and_local_time(tmp_path, monkeypatch, capsys):
    v, _key, _rid = _vault_with_a_search(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["vault", "register", v]) == 0
    search = next(line for line in capsys.readouterr().out.splitlines() if "filtres" in line)
    assert "agent : A-1234" in search and "déclenchement : flagrant délit" in search
    assert "période : 2026-11-18 00:00 CET au 2026-11-19 00:00 CET" in search
    assert "reason=" not in search and "T23:00:00" not in search


def test_a_consultation_without_a_player_says_how_to_watch(tmp_path, monkeypatch, capsys):
    v, key, rid = _vault_with_a_search(tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["vault", "view", v, rid, "--purpose", "judiciaire", "--requester", "OPJ Durand", "--no-play",
                 "--identity", str(key)]) == 0
    assert "pieton desk" in capsys.readouterr().out
    # A mistyped id: the command names where the ids are (the listing, no motive needed).
    for command in (["view", v, rid[:-1], "--purpose", "judiciaire", "--requester", "OPJ Durand", "--no-play"],
                    ["hold", v, rid[:-1], "--procedure", "PV-1"]):
        assert main(["vault", *command, "--identity", str(key)]) == 2
        assert "`pieton vault list` shows the ids" in capsys.readouterr().err


def test_the_technicians_signed_bundle_plays_on_the_simulated_camera(tmp_path, capsys):
    """README: the chief tries the technician's device bundle on a simulated camera."""
    _identity, recipient = generate_identity()
    tech, vault_key = tmp_path / "tech.key", tmp_path / "vault.key"
    assert main(["keys", "technician", "--out", str(tech)]) == 0
    assert main(["keys", "technician", "--out", str(vault_key)]) == 0   # any Ed25519 public key will do
    vault_pub = capsys.readouterr().out.split()[-1]
    assert main(["config", "init", str(tmp_path / "cfg"), "--device", "--technician-key", str(tech),
                 "--recipient", recipient, "--vault-key", vault_pub, "--arrete", "2026-DSC-0412",
                 "--commune", "71014", "--until", "30/06/2031"]) == 0   # as vault authorise writes it
    assert "until = 2031-06-30" in (tmp_path / "cfg" / "pieton.toml").read_text()
    bundle = tmp_path / "v1.bundle"
    assert main(["config", "sign", str(tmp_path / "cfg" / "pieton.toml"), "--key", str(tech), "--version", "1",
                 "--fleet", "autun-pm", "--out", str(bundle)]) == 0
    assert main(["provision", "--state-dir", str(tmp_path / "camera"), "--camera-id", "CAM-AUTUN-07"]) == 0
    scenario = tmp_path / "short.toml"
    scenario.write_text(textwrap.dedent("""\
        [scenario]
        name = "one intervention"
        duration_s = 14
        [[event]]
        at = 0.5
        do = "gps_route"
        points = [[46.9535, 4.2990], [46.9510, 4.2985]]
        speed_mps = 1.4
        [[event]]
        at = 2
        do = "press"
        [[event]]
        at = 5
        do = "press"
        [[event]]
        at = 8
        do = "hold"
        seconds = 3.5
        [[event]]
        at = 13
        do = "expect"
        state = "armed"
        recordings = 1
        """))
    player = simulate(scenario, tmp_path / "camera", config_path=bundle)
    assert not player.failures
    recordings = [p.name for p in (tmp_path / "camera" / "spool").iterdir() if p.name.startswith("CAM-AUTUN-07_")]
    assert len(recordings) == 1
    lines = []
    print_summary(player, out=lines.append)   # every time it prints says its zone
    assert any(line.strip().startswith("bookmarks") and line.endswith(" UTC") for line in lines)
    assert "\nLights and motor (times UTC):" in lines


def test_the_desk_shows_times_in_the_vaults_own_zone(tmp_path, monkeypatch):
    """One rule for times: a vault made for Cayenne is read in Cayenne's time at the desk too."""
    monkeypatch.setenv("PIETON_PASSPHRASE", "trois mots au hasard chez nous")
    identity = tmp_path / "chief.age"
    assert main(["keys", "chief", "--out", str(identity)]) == 0
    _id, recipient = generate_identity()
    (tmp_path / "police").mkdir()
    (tmp_path / "exports").mkdir()
    v = str(tmp_path / "vault")
    assert main(["vault", "init", v, "--recipient", recipient, "--register", str(tmp_path / "police" / "r.jsonl"),
                 "--timezone", "America/Cayenne"]) == 0
    desk = ["desk", v, "--person", f"Chef={identity}", "--exports", str(tmp_path / "exports")]
    assert build_config(build_parser().parse_args(desk)).zone == "America/Cayenne"
    assert build_config(build_parser().parse_args([*desk, "--timezone", "Europe/Paris"])).zone == "Europe/Paris"


def test_cameras_and_yearly_figures_read_as_people_read_them(tmp_path, monkeypatch, capsys):
    v, key, _rid = _vault_with_a_search(tmp_path, monkeypatch)
    assert main(["vault", "authorise", v, "--arrete", "T-2", "--date", "01/06/2026", "--cameras", "2",
                 "--communes", "71014", "--identity", str(key)]) == 0
    assert main(["vault", "retire", v, "--camera", CAMERA, "--reason", "lost", "--identity", str(key)]) == 0
    capsys.readouterr()
    assert main(["vault", "cameras", v]) == 0
    out = capsys.readouterr().out
    assert "superseded on 20" in out and "enrolled 20" in out and "RETIRED (lost) on 20" in out
    assert "Z" not in out.replace("CAM-T-001", "") and out.count(" CET") + out.count(" CEST") >= 3
    assert main(["vault", "stats", v, "--year", "2026"]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "'" not in out   # no program notation


def test_simulate_prints_its_summary_without_the_daemons_log_lines(tmp_path):
    """Without -v, a refused start is told once, in the summary, not also as a log line of
    wall-clock time that contradicts the simulated times beside it."""
    scenario = tmp_path / "outside.toml"
    scenario.write_text(textwrap.dedent("""\
        [scenario]
        name = "a press in Paris"
        duration_s = 6
        [[event]]
        at = 0.5
        do = "gps_route"
        points = [[48.8566, 2.3522], [48.8570, 2.3530]]
        speed_mps = 1.4
        [[event]]
        at = 3
        do = "press"
        """))
    _identity, recipient = generate_identity()
    done = subprocess.run([sys.executable, "-m", "tools.cli", "simulate", str(scenario), "--state-dir",
                           str(tmp_path / "camera"), "--recipient", recipient],
                          capture_output=True, text=True, timeout=300)
    assert "Refused starts: 1" in done.stdout and "outside the authorised commune" in done.stdout
    assert "WARNING" not in done.stderr and "pieton.state" not in done.stderr, done.stderr
