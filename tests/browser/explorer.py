#!/usr/bin/python3
"""The explorer in headless Chromium at 360 px, as a citizen on a cheap phone uses it.

Opens the lookup page, switches language and back, types a sample tracking code, waits for
the page's own script to check every step's inclusion proof and the checkpoint's validator
signatures with WebCrypto, downloads one step's proof, then drills down the region
dashboard from the program period to a village level, every total checked the same way.
Finally it alters one hash in the embedded proof data and checks that the verification
then fails: the green mark is earned, not printed.

Run by `node/tests/api.rs` (the_explorer_verifies_its_proofs_in_headless_chromium) against
an in-process node with the demo year; run it by hand against the demo network with
`--screenshots docs/screenshots` to refresh the committed screenshots.

Usage: explorer.py --url http://127.0.0.1:PORT --code BNS-... --program PKH --period 2026-T1
       [--screenshots DIR] [--downloads DIR]
"""

import argparse
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

WIDTH = 360
WAIT_SECONDS = 20


def fail(message):
    print(f"browser test FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def start(downloads):
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WIDTH},800", "--lang=id"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": downloads,
        "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    # A desktop window cannot be made this narrow: emulate the phone's viewport instead.
    phone(driver, 800)
    driver.set_page_load_timeout(WAIT_SECONDS)
    return driver


def phone(driver, height):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WIDTH, "height": height, "deviceScaleFactor": 2, "mobile": True})


def verified(driver):
    """Waits for the page's script to finish; returns the summary's class and text."""
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.execute_script("return document.body.dataset.verified") == "done")
    summary = driver.find_element(By.ID, "v-summary")
    return summary.get_attribute("class"), summary.text


def no_sideways_scroll(driver, where):
    width = driver.execute_script("return document.documentElement.scrollWidth")
    if width > WIDTH:
        wide = driver.execute_script(f"""
            return [...document.querySelectorAll('body *')]
              .filter(e => e.getBoundingClientRect().right > {WIDTH})
              .slice(0, 5).map(e => e.tagName + ' ' + (e.id || e.className) + ' ' +
                               Math.round(e.getBoundingClientRect().right)).join('; ');""")
        fail(f"{where}: the page is {width}px wide at {WIDTH}px ({wide})")


def screenshot(driver, directory, name):
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    phone(driver, min(max(height, 640), 4000))
    path = os.path.join(directory, name)
    driver.save_screenshot(path)
    phone(driver, 800)
    print(f"screenshot {path}")


def lookup(driver, base, code, shots, downloads):
    driver.get(base + "/")
    check(driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "id", "Bahasa is the default")
    check("Kode lacak" in driver.page_source, "the lookup form's label")
    driver.find_element(By.LINK_TEXT, "English").click()
    check(driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en", "the English switch")
    check("Tracking code" in driver.page_source, "the English label")
    driver.find_element(By.LINK_TEXT, "Bahasa Indonesia").click()
    check(driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "id", "back to Bahasa")

    # Typed as a person might, lower case, then Enter (the form works without script).
    field = driver.find_element(By.ID, "kode")
    field.send_keys(code.lower())
    field.send_keys(Keys.ENTER)
    cls, text = verified(driver)
    check("ok" in cls.split(), f"the timeline's proofs: {cls} {text!r}")
    steps = driver.find_elements(By.CSS_SELECTOR, "ol.steps li")
    check(len(steps) >= 4, f"a timeline of {len(steps)} steps")
    marks = driver.find_elements(By.CSS_SELECTOR, "ol.steps .v")
    check(all("ok" in m.get_attribute("class").split() for m in marks),
          "every step verified: " + ", ".join(m.text for m in marks))
    check("Sudah disalurkan" in driver.page_source, "a plain-language payment step")
    no_sideways_scroll(driver, "lookup")
    screenshot(driver, shots, "explorer-lookup-360.png")

    # One step's proof, downloaded as a file.
    before = set(os.listdir(downloads))
    driver.find_elements(By.PARTIAL_LINK_TEXT, "unduh bukti")[0].click()
    deadline = time.time() + WAIT_SECONDS
    new = []
    while time.time() < deadline:
        new = [f for f in set(os.listdir(downloads)) - before if not f.endswith(".crdownload")]
        if new:
            break
        time.sleep(0.2)
    check(new, "the proof download")
    with open(os.path.join(downloads, new[0]), encoding="utf-8") as f:
        proof = f.read()
    check(proof.startswith("c2sp.org/tlog-proof@v1\n"), f"a C2SP tlog-proof: {proof[:60]!r}")
    print(f"downloaded {new[0]} ({len(proof)} bytes)")

    # The mark is earned: one altered hash in the proof data, and the same script refuses.
    driver.execute_script("""
        const el = document.getElementById('bukti');
        const data = JSON.parse(el.textContent);
        const h = data.track.steps[0].leaf_hash;
        data.track.steps[0].leaf_hash = (h[0] === 'A' ? 'B' : 'A') + h.slice(1);
        el.textContent = JSON.stringify(data);
        delete document.body.dataset.verified;
        const s = document.createElement('script');
        s.src = document.querySelector('script[src]').src + '?again';
        document.body.appendChild(s);
    """)
    cls, text = verified(driver)
    check("bad" in cls.split(), f"an altered leaf must fail: {cls} {text!r}")


def dashboards(driver, base, program, period, shots):
    driver.get(f"{base}/wilayah?program={program}&periode={period}")
    cls, text = verified(driver)
    check("ok" in cls.split(), f"the program period's totals: {cls} {text!r}")
    check(driver.find_elements(By.TAG_NAME, "svg"), "a chart")
    levels = 0
    while True:
        no_sideways_scroll(driver, driver.current_url)
        links = [a for a in driver.find_elements(By.CSS_SELECTOR, "tbody th a")]
        if levels == 2:
            screenshot(driver, shots, "explorer-dashboard-360.png")
        if not links:
            break
        links[0].click()
        levels += 1
        cls, text = verified(driver)
        check("ok" in cls.split() or "Wilayah ini" in driver.page_source,
              f"{driver.current_url}: {cls} {text!r}")
        rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr")
        for row in rows:
            cells = row.find_elements(By.TAG_NAME, "td")
            if cells and cells[0].text != "< 10":
                count = int(cells[0].text.replace(".", ""))
                check(count >= 10, f"{driver.current_url}: a published cell of {count}")
    url = driver.current_url
    check(url.count(".") >= 2, f"drilled down to a district or village table: {url}")
    print(f"drilled {levels} levels down to {url}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--code", required=True)
    parser.add_argument("--program", required=True)
    parser.add_argument("--period", required=True)
    parser.add_argument("--screenshots")
    parser.add_argument("--downloads")
    args = parser.parse_args()
    downloads = args.downloads or tempfile.mkdtemp(prefix="bansos-downloads-")
    driver = start(downloads)
    try:
        lookup(driver, args.url.rstrip("/"), args.code, args.screenshots, downloads)
        dashboards(driver, args.url.rstrip("/"), args.program, args.period, args.screenshots)
    finally:
        driver.quit()
    print("browser test passed")


if __name__ == "__main__":
    main()
