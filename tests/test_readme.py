"""The README's quick start works as pasted: the chief's first steps, the technician's,
then the chief's offload and extraction, run by bash in that order."""

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
    assert "verdict: READY" in result.stdout      # the technician's self-test of the bench camera
    assert (tmp_path / "essai" / "exports" / "pv-001.mp4").stat().st_size > 100_000
