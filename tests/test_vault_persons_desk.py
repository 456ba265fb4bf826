"""The desk's side of the designated persons (issue 15 on issue 13): signing in is for
designated persons only (the author of what they do is their matricule), and the health
line says when the mirror was last brought up to date and checked."""

import pytest
from conftest import read_jsonl
from vault_support import CAMERA, START, Clock, make_spool

from recorder.evidence.age import generate_identity
from tools.desk.access import Refused
from tools.desk.app import Desk, DeskConfig
from tools.desk.health import HealthCheck
from tools.desk.signin import admit
from tools.vault.ingest import ingest
from tools.vault.mirror import mirror
from tools.vault.persons import designate, revoke
from tools.vault.vault import Vault, init_vault


@pytest.fixture
def made(tmp_path):
    chief, agent = generate_identity(), generate_identity()
    (tmp_path / "police").mkdir()
    (tmp_path / "exports").mkdir()
    init_vault(tmp_path / "vault", [chief[1]], tmp_path / "police" / "register.jsonl")
    with Vault.open(tmp_path / "vault") as vault:
        designate(vault, [chief[0]], name="Chef Martin", matricule="PM-0042", role="responsable",
                  designated_by="Maire", decision="arrêté 1", recipient=chief[1])
        designate(vault, [chief[0]], name="Paul Roy", matricule="PM-0107", role="agent-habilité",
                  designated_by="Maire", decision="arrêté 2", recipient=agent[1])
    desk = Desk(DeskConfig(tmp_path / "vault", {}, tmp_path / "exports"))
    return tmp_path, desk, chief, agent


def test_sign_in_names_the_matricule_and_refuses_an_identity_of_no_designated_person(made):
    root, desk, chief, agent = made
    session = admit(desk, "Chef Martin", [chief[0]])
    assert session.matricule == "PM-0042"
    journal = read_jsonl(root / "vault" / "journal.jsonl")
    assert journal[-1]["event"] == "desk-sign-in" and journal[-1]["operator"] == "PM-0042"
    stranger = generate_identity()
    with pytest.raises(Refused) as refused:
        admit(desk, "Chef Martin", [stranger[0]])
    assert refused.value.status == 403 and "personne désignée" in refused.value.reason
    last = read_jsonl(root / "vault" / "journal.jsonl")[-1]
    assert last["event"] == "access-refused" and last["recipient"] == stranger[1]
    assert last["action"] == "desk-sign-in"
    assert len(desk.sessions) == 1
    with Vault.open(root / "vault") as vault:
        revoke(vault, [chief[0]], matricule="PM-0107", decision="arrêté 3")
    with pytest.raises(Refused):
        admit(desk, "Paul Roy", [agent[0]])
    assert "revoked" in read_jsonl(root / "vault" / "journal.jsonl")[-1]["reason"]


def test_health_line_says_the_mirrors_last_check(made):
    root, _, chief, _ = made
    clock = Clock(START + 7200)
    with Vault.open(root / "vault", clock=clock) as vault:
        health = HealthCheck()
        line = health(vault, None)
        assert line.mirrors == 0 and line.mirror_checked is None and not line.mirror_late
        spool_dir, signer = make_spool(root, [chief[1]], recordings=1, segments=1)
        vault.enrol(CAMERA, signer.public_key_hex)
        ingest(vault, spool_dir, progress=False)
        (root / "mirror").mkdir()
        assert mirror(vault, root / "mirror").ok
        assert (root / "mirror" / "persons.json").is_file()   # a restored mirror knows who may see
        line = health(vault, None)
        assert line.mirrors == 1 and line.mirror_checked.endswith("CET") and not line.mirror_late
        assert line.ok
        clock.t += 8 * 86400
        line = health(vault, None)
        assert line.mirror_late and not line.ok
