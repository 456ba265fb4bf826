"""The chief draws a licence plate's box on a training clip's contact sheet, in a real
browser (Debian's chromium, headless, through chromium-driver): the box lands in the plates
field in the clip's own pixels, and the clip is made again with it."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from test_desk_training import desk, made  # noqa: F401 - fixtures

from tests.desk_support import sign_in
from tools.desk.browser import headless_chromium, missing_tools
from tools.vault.extract import Request, extract
from tools.vault.training_approval import PENDING, PLATES
from tools.vault.vault import Vault

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser(made):  # noqa: F811
    for tool in missing_tools():
        pytest.fail(f"{tool} is not installed: `make system` installs chromium and chromium-driver")
    driver = headless_chromium(made["root"] / "profile", "--window-size=1200,900")
    driver.set_page_load_timeout(60)
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


def test_a_box_drawn_on_the_contact_sheet_is_given_in_the_clips_pixels(browser, desk, made):  # noqa: F811
    with Vault.open(made["vault"]) as vault:
        vault.operator = "PM-0042"
        result = extract(vault, Request([made["rid"]], "training", "Formation ENPM", "Formateur",
                                        made["exports"] / "dessin.mp4"), [made["identity"]])
    xid = result.report["extraction_id"]
    sign_in(browser, desk.url)
    browser.find_element(By.ID, "liste")
    browser.find_element(By.ID, "nav-formation").click()
    browser.find_element(By.LINK_TEXT, xid).click()
    picture = browser.find_element(By.CSS_SELECTOR, "#planche img")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", picture)
    assert picture.size["width"] == 480   # the clip is 320 px wide: a box is scaled by 2/3
    # Drag from (60, 150) to (120, 180) of the picture (offsets from its centre).
    centre_x, centre_y = picture.size["width"] / 2, picture.size["height"] / 2
    ActionChains(browser).move_to_element_with_offset(picture, int(60 - centre_x), int(150 - centre_y)) \
        .click_and_hold().move_by_offset(30, 15).move_by_offset(30, 15).release().perform()
    t, x, y, w, h = browser.find_element(By.ID, "p-plaques").get_attribute("value").split(",")
    assert float(t) == float(picture.get_attribute("data-t"))
    for got, want in zip((x, y, w, h), (40, 100, 40, 20), strict=True):
        assert abs(int(got) - want) <= 1, (x, y, w, h)
    assert browser.find_elements(By.CSS_SELECTOR, "#planche .cadre")   # the box shows where it was drawn
    # The field is reachable by keyboard: a second box typed, then the form sent with Enter.
    field = browser.find_element(By.ID, "p-plaques")
    field.send_keys(Keys.END, Keys.ENTER, "1.0,200,150,60,30")
    sheet = browser.find_element(By.TAG_NAME, "h1")
    browser.find_element(By.ID, "refaire").send_keys(Keys.ENTER)
    # The clip is made again by a job of the desk: wait for the sheet's page to go, then for its
    # page (refreshed every 2 s) to lead to the new clip's sheet, rather than read a heading too early.
    WebDriverWait(browser, 120).until(expected_conditions.staleness_of(sheet))
    WebDriverWait(browser, 300).until(lambda b: "/formation/X-training-" in b.current_url and xid not in b.current_url)
    browser.find_element(By.ID, "planche")
    heading = browser.find_element(By.TAG_NAME, "h1").text
    new = heading.rsplit(" ", 1)[-1]
    assert new.startswith("X-training-") and new != xid
    marks = json.loads((made["vault"] / PENDING / new / PLATES).read_text())
    assert [m["t"] for m in marks] == [float(t), 1.0] and marks[1]["box"] == [200, 150, 60, 30]
