"""The README's quick start works as pasted: the chief's first steps, the technician's,
then the chief's whole path (offload, list, search, consult, an extraction for each purpose
with the training sign-off, hold and release, purge, register, public notice), run by bash
in that order."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def quick_start_script(work: Path) -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quick start"):readme.index("## How it works")]
    technician, chief = re.findall(r"```sh\n(.*?)```", section, re.S)
    cut = chief.index("# (the technician")     # the chief's steps 1 and 2 come first
    script = chief[:cut] + technician + chief[cut:]
    return script.replace("/tmp/pieton-essai", str(work))


def test_the_quick_start_runs_as_pasted(tmp_path):
    script = quick_start_script(tmp_path / "essai")
    env = dict(os.environ, PIETON_PASSPHRASE="trois mots au hasard chez nous")
    # `. .venv/bin/activate` puts pieton on the PATH; this interpreter's folder has it too.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    script = script.replace(". .venv/bin/activate\n", "")
    result = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "signature valid" in result.stdout and "3 stored" in result.stdout
    # The second designated person is in the fleet's bundle: ingest finds no stray recipient.
    assert "designated Paul Roy (PM-0107, agent-habilité)" in result.stdout
    assert "not designated" not in result.stdout
    assert "verdict: READY" in result.stdout      # the technician's self-test of the bench camera
    exports = tmp_path / "essai" / "exports"
    assert (exports / "pv-001.mp4").stat().st_size > 100_000
    # The chief's whole path: the recordings carry the assigned agent (a search by agent finds
    # them), each purpose is extracted, the training clip is delivered only once signed off.
    assert "recording(s) found; search (judicial, asked by OPJ Durand" in result.stdout
    assert "search (access, asked by M. Dupont)" in result.stdout
    assert "consultation of " in result.stdout
    for name in ("adm-001", "disc-001", "formation-001"):
        assert (exports / f"{name}.mp4").is_file() and (exports / f"{name}.report.html").is_file(), name
    assert "approved and delivered" in result.stdout
    assert "held for procedure PV 2026/1234" in result.stdout and "released from procedure" in result.stdout
    for operation in ("Recherche", "Consultation", "Extraction", "Validation d'une extraction de formation",
                      "Retenue pour une procédure", "Levée d'une retenue"):
        assert operation in result.stdout, operation
    assert "Information du public" in (tmp_path / "essai" / "information.html").read_text()
