"""`make screenshots`: a screenshot of each page of the chief's desk, for review (written to
``screenshots/``, never committed). Runs a short simulated patrol into a fresh vault, serves
the desk and drives chromium headless through it."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.desk_support import ServedDesk, fill_consultation, fill_extraction, patrol_vault, sign_in
from tools.desk.browser import headless_chromium


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pieton-screenshots-") as tmp:
        made = patrol_vault(Path(tmp))
        desk = ServedDesk(made)
        driver = headless_chromium(Path(tmp) / "profile", "--window-size=1280,1000")
        shots = []

        def shot(name):
            path = out / f"{len(shots) + 1:02d}-{name}.png"
            driver.save_screenshot(str(path))
            shots.append(path)
        try:
            driver.get(desk.url + "/connexion")
            shot("connexion")
            sign_in(driver, desk.url)
            shot("enregistrements")
            rid = made["recordings"][0]
            driver.get(f"{desk.url}/enregistrements/{rid}")
            shot("enregistrement")
            fill_consultation(driver, requester="OPJ Durand")
            driver.execute_script("document.getElementById('video').play()")
            WebDriverWait(driver, 20).until(lambda d: d.execute_script(
                "return document.getElementById('video').currentTime") > 2)
            shot("consultation")
            fill_extraction(driver, motive="judicial", requester="OPJ Durand", recipient="Parquet d'Autun",
                            name="pv-capture")
            WebDriverWait(driver, 300).until(lambda d: d.find_elements(By.ID, "extraction-faite"))
            shot("extraction")
            driver.get(f"{desk.url}/enregistrements/{rid}")
            fill_extraction(driver, motive="training", requester="Formation ENPM", recipient="Formateur",
                            name="formation-capture")
            WebDriverWait(driver, 300).until(lambda d: d.find_elements(By.ID, "vers-planche"))
            shot("formation-en-attente")
            driver.get(desk.url + "/formation")
            shot("formation")
            driver.find_element(By.CSS_SELECTOR, "#formation a").click()
            shot("planche")
            driver.get(desk.url + "/registre")
            shot("registre")
            driver.get(desk.url + "/recherche")
            shot("recherche")
            driver.get(desk.url + "/cameras")
            shot("cameras")
            driver.get(desk.url + "/chiffres?annee=2026")
            shot("chiffres")
            driver.get(desk.url + "/enregistrements/CAM-SIM-001_20261127T000000Z_000099")
            shot("refus")
        finally:
            driver.quit()
            desk.stop()
    for path in shots:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots")))
