"""The page as a radiologist uses it, in headless Chromium driven over the DevTools protocol: ticking filters,
pressing Open, following a shared link, typing an API key, going back (the system: tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from support.page_gateway import ADMIN_KEY, IMAGES, a_glioma

pytestmark = pytest.mark.e2e

def test_filter_controls_write_the_url_and_open_makes_a_case_the_query(gateway, browser):
    query_id = a_glioma(gateway)
    browser.open(gateway.page(tumor=query_id))
    browser.wait_settled()
    before = browser.js("[...document.querySelectorAll('[data-testid=result]')].map(c => c.dataset.id)")
    assert len(before) >= 5

    browser.js("document.querySelector('input[name=type][value=meningioma]').click()")
    browser.js("document.querySelector('input[name=exclude_same_patient]').click()")
    browser.js("const k = document.querySelector('select[name=k]'); k.value = '5';"
               "k.dispatchEvent(new Event('change', {bubbles: true}))")
    browser.wait_settled()
    search = urllib.parse.parse_qs(browser.js("location.search")[1:])
    assert search == {"tumor": [query_id], "type": ["meningioma"], "exclude_same_patient": ["false"], "k": ["5"]}
    types = browser.js("[...document.querySelectorAll('[data-testid=result-type]')].map(t => t.textContent)")
    assert types and set(types) == {"meningioma"} and len(types) <= 5
    assert browser.js("history.length") == 1  # filters replace the entry, they do not stack up

    chosen = browser.js("document.querySelector('[data-testid=result]').dataset.id")
    browser.js("document.querySelector('[data-testid=result] button.primary').click()")
    browser.wait_settled()
    search = urllib.parse.parse_qs(browser.js("location.search")[1:])
    assert search["tumor"] == [chosen] and search["type"] == ["meningioma"]  # the filters stay
    assert browser.js("document.querySelector('[data-testid=query]').dataset.id") == chosen
    assert chosen not in browser.js("[...document.querySelectorAll('[data-testid=result]')].map(c => c.dataset.id)")

    browser.js("history.back()")
    browser.wait_settled()
    assert browser.js("document.querySelector('[data-testid=query]').dataset.id") == query_id


def test_a_shared_link_sets_the_filter_controls(gateway, browser):
    browser.open(gateway.page(tumor=a_glioma(gateway), hemisphere=["left", "midline"], min_size_mm3="1500", k="7"))
    browser.wait_settled()
    controls = browser.js("""(() => { const f = document.getElementById('filters');
        return {hemispheres: [...f.querySelectorAll('input[name=hemisphere]:checked')].map(b => b.value),
                types: [...f.querySelectorAll('input[name=type]:checked')].map(b => b.value),
                min: f.elements.min_size_cm3.value, max: f.elements.max_size_cm3.value, k: f.elements.k.value,
                exclude: f.elements.exclude_same_patient.checked}; })()""")
    assert controls == {"hemispheres": ["left", "midline"], "types": [], "min": "1.5", "max": "", "k": "7",
                        "exclude": True}
    sizes = browser.js("[...document.querySelectorAll('[data-testid=result]')].map(c => c.dataset.id)")
    assert all(gateway.payloads[i]["size_mm3"] >= 1500 and gateway.payloads[i]["hemisphere"] in ("left", "midline")
               for i in sizes)


def test_the_open_field_takes_a_study_uid_or_a_tumour_id(gateway, browser):
    study_uid = gateway.studies[IMAGES["meningioma"][0]]
    browser.open(f"{gateway.url}/ui/")
    browser.wait_settled()
    browser.js(f"document.getElementById('open-input').value = {json.dumps(' ' + study_uid + ' ')};"
               "document.querySelector('#open-form button[type=submit]').click()")
    browser.wait_settled()
    assert browser.js("location.search") == f"?study={study_uid}"
    assert browser.js("document.querySelector('[data-testid=study-state]').textContent").startswith("Done")
    browser.js("document.querySelector('[data-testid=study-tumor]').click()")
    browser.wait_settled()
    assert browser.js("location.search").startswith("?tumor=")
    assert browser.js("document.querySelectorAll('[data-testid=result]').length") >= 5

    browser.js("document.getElementById('open-input').value = 'MRN 12345';"
               "document.querySelector('#open-form button[type=submit]').click()")
    assert not browser.js("document.querySelector('[data-testid=error]').hidden")
    assert "study instance UID" in browser.js("document.getElementById('error-detail').textContent")


def _old_document_still_there(browser) -> bool:
    """True while the document from before a reload answers; an evaluation the navigation cut short
    ("Inspected target navigated or closed") means it is going, so ask again."""
    try:
        return browser.js("window.beforeReload === true")
    except AssertionError as error:
        if "navigated or closed" in str(error):
            return True
        raise


def test_behind_authentication_the_page_asks_for_the_key_and_sends_it(gateway, browser):
    query_id = a_glioma(gateway)
    browser.open(f"{gateway.keyed_url}/ui/?tumor={query_id}")  # the page itself needs no key
    browser.wait_settled()
    assert not browser.js("document.querySelector('[data-testid=error]').hidden")
    assert "Enter your API key" in browser.js("document.getElementById('error-detail').textContent")
    assert browser.js("document.querySelectorAll('[data-testid=result]').length") == 0

    browser.js(f"const key = document.getElementById('api-key'); key.value = {json.dumps(ADMIN_KEY)};"
               "key.dispatchEvent(new Event('change', {bubbles: true}))")
    browser.wait_settled()
    assert browser.js("document.querySelector('[data-testid=error]').hidden")
    assert browser.js("document.querySelectorAll('[data-testid=result]').length") >= 5
    # every thumbnail came through fetch with the key (an <img src> could not have sent it)
    assert browser.js("[...document.querySelectorAll('img.thumb')].every(i => i.dataset.loaded === 'true' "
                      "&& i.src.startsWith('blob:'))")
    assert browser.js("sessionStorage.getItem('tumorsearch.apiKey')") == ADMIN_KEY
    assert browser.js("localStorage.length") == 0  # kept for this tab only

    browser.js("window.beforeReload = true; location.reload()")
    deadline = time.monotonic() + 30
    while _old_document_still_there(browser) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the new document replaced this one
    browser.wait_settled()
    assert browser.js("document.querySelector('[data-testid=error]').hidden")
    assert browser.js("document.querySelectorAll('[data-testid=result]').length") >= 5
