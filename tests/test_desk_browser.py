"""The chief's desk in a real browser: Debian's chromium, headless, driven by Selenium
through chromium-driver, against a vault filled by a short simulated patrol."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from drivers.camera import read_counter
from tests.conftest import read_jsonl
from tests.desk_support import PASSPHRASE, PERSON, ServedDesk, patrol_vault
from tools.cli import main as pieton

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return patrol_vault(tmp_path_factory.mktemp("desk"))


@pytest.fixture(scope="module")
def desk(made):
    served = ServedDesk(made)
    yield served
    served.stop()


@pytest.fixture(scope="module")
def browser(made):
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: `make system` installs chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                 "--autoplay-policy=no-user-gesture-required", "--disable-gpu", "--window-size=1200,900",
                 f"--user-data-dir={made['root'] / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def sign_in(browser, desk, passphrase=PASSPHRASE):
    browser.get(desk.url + "/connexion")
    Select(browser.find_element(By.ID, "personne")).select_by_visible_text(PERSON)
    browser.find_element(By.ID, "phrase").send_keys(passphrase)
    browser.find_element(By.ID, "connexion").click()


def journal(made):
    return read_jsonl(made["vault"] / "journal.jsonl")


def test_sign_in_refuses_a_wrong_passphrase_then_opens_the_listing(browser, desk, made):
    sign_in(browser, desk, "pas la bonne phrase")
    assert "Phrase secrète incorrecte" in browser.find_element(By.ID, "erreur").text
    assert journal(made)[-1]["event"] == "desk-sign-in-refused"
    assert browser.get_cookie("pieton_desk") is None
    sign_in(browser, desk)
    assert browser.current_url.endswith("/enregistrements")
    cookie = browser.get_cookie("pieton_desk")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    entry = journal(made)[-1]
    assert entry["event"] == "desk-sign-in" and entry["operator"] == made["recipient"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#liste tbody tr")
    assert len(rows) == 2
    assert "CET" in rows[0].text and made["camera"] in rows[0].text
    # Newest first by default; the other order on request.
    assert made["recordings"][1] in rows[0].text
    browser.get(desk.url + "/enregistrements?tri=debut&ordre=asc")
    assert made["recordings"][0] in browser.find_element(By.CSS_SELECTOR, "#liste tbody tr").text
    assert "Registre : support présent" in browser.find_element(By.ID, "sante").text
    # A listing is not a consultation: nothing went to the register.
    assert not [line for line in read_jsonl(made["register"]) if line["event"] == "consultation"]
