"""The web page in a real browser: headless Chromium loads /ui/ from a real `tumorsearch gateway` whose index
holds real tumours (nine figshare fold-5 slices run through the worker pipeline), and the rendered DOM shows
the query, the similar cases with their thumbnails and labels, the filters' effect, and errors.

Chromium (Debian's /usr/bin/chromium, headless) is driven two ways, with no Python package beyond the stdlib:
- `--dump-dom` for what a link shows: `--virtual-time-budget` lets the page's fetches finish before the DOM is
  written out; the page marks itself `<body data-status="ready|error">` when done and each thumbnail
  `data-loaded="pending|true|false"` (the test re-runs Chromium a few times if it has not settled, which
  happens on a loaded machine);
- the DevTools protocol over `--remote-debugging-pipe` (fds 3 and 4) for what a radiologist does: ticking
  filters, pressing Open, typing an API key, going back.
A screenshot at 1280x900 is kept as an artefact in var/test-artifacts/gateway-page.png (var/ is git-ignored).
The system (tests/support/page_gateway.py, fixtures in tests/e2e/conftest.py) starts its own Redis, and the index
is built once per test module; the interactive tests are in test_gateway_page_browser.py.
"""

from __future__ import annotations

import sys
import urllib.parse
import urllib.request
import uuid

import pytest

from support.browser import chromium, render
from support.page_gateway import (ARTEFACTS, FAILED_REASON, IMAGES, a_glioma, card_type, result_cards,
                                  thumbs)

pytestmark = pytest.mark.e2e

# ------------------------------------------------------------------ the tests

def test_the_index_holds_enough_tumours_for_the_page(gateway):
    found = {t: len(ids) for t, ids in gateway.tumours.items()}
    assert sum(found.values()) >= 7, f"expected at least 7 tumours in nine tumour slices; found {found}"


def test_a_glioma_shows_the_query_and_similar_cases_with_thumbnails_and_labels(gateway):
    query_id = a_glioma(gateway)
    url = gateway.page(tumor=query_id)
    dom = render(url)
    [error] = dom.testid("error")
    assert error.hidden, f"expected no error banner; found {error.all_text()!r}"
    [query] = dom.testid("query")
    text = query.all_text()
    assert "glioma" in text and "cm³" in text and "Hemisphere" in text, text
    assert gateway.payloads[query_id]["hemisphere"] in text
    [query_thumb] = thumbs(query)
    assert query_thumb.attrs["src"].startswith("blob:") and query_thumb.attrs.get("data-loaded") == "true"

    cards = result_cards(dom)
    assert len(cards) >= 5, f"expected at least 5 similar cases; found {len(cards)}"
    answer = gateway.api(f"/api/v1/tumors/{query_id}/similar")
    assert [c.attrs["data-id"] for c in cards] == [r["tumor"]["id"] for r in answer["results"]]
    assert query_id not in {c.attrs["data-id"] for c in cards}
    for card, result in zip(cards, answer["results"]):
        [img] = thumbs(card)
        assert img.attrs["src"].startswith("blob:"), img.attrs
        assert img.attrs.get("data-loaded") == "true", f"expected the thumbnail to load; found {img.attrs}"
        assert card_type(card) == result["tumor"]["labels"]["type"]
        text = card.all_text()
        assert f"{round(result['similarity'] * 100)} %" in text, text  # similarity as a percentage
        assert "cm³" in text and "Why it matched" in text and "Open" in text
        chips = card.find_all("span")
        agree = [c for c in chips if "agree" in c.attrs.get("class", "").split()]
        differ = [c for c in chips if "differ" in c.attrs.get("class", "").split()]
        assert len(agree) == len(result["why"]["agreeing_labels"])
        assert len(differ) == len(result["why"]["differing_labels"])
        assert "mm apart" in text

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "gateway-page.png"
    chromium(url, f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot of the page: {shot}", file=sys.stderr)


def test_a_type_filter_keeps_only_that_type_and_is_in_the_controls(gateway):
    query_id = a_glioma(gateway)
    unfiltered = {c.attrs["data-id"] for c in result_cards(render(gateway.page(tumor=query_id)))}
    dom = render(gateway.page(tumor=query_id, type="meningioma"))
    cards = result_cards(dom)
    expected = [p for p, payload in gateway.payloads.items() if payload["tumor_type"] == "meningioma"]
    assert cards and len(cards) == min(len(expected), 10), \
        f"expected the {len(expected)} meningiomas; found {len(cards)}"
    assert {card_type(c) for c in cards} == {"meningioma"}
    assert {c.attrs["data-id"] for c in cards} != unfiltered
    assert "meningioma" in " ".join(n.all_text() for n in dom.find_all(id="results-summary"))


def test_a_study_shows_its_state_and_tumours(gateway):
    image_id, study_uid = next((i, s) for i, s in gateway.studies.items() if i in IMAGES["glioma"])
    dom = render(gateway.page(study=study_uid))
    [state] = dom.testid("study-state")
    assert state.all_text().startswith("Done"), state.all_text()
    tumours = dom.testid("study-tumor")
    status = gateway.api(f"/api/v1/studies/{study_uid}")
    assert [t.attrs["data-id"] for t in tumours] == [t["id"] for t in status["tumors"]]
    assert all(thumbs(t)[0].attrs.get("data-loaded") == "true" for t in tumours)


@pytest.mark.parametrize("bad, detail", [
    (str(uuid.UUID(int=7)), "no tumour with this id in the index"),
    ("not-a-tumour", "expected a UUID"),
])
def test_a_bad_tumour_id_shows_the_problem_detail_in_the_banner(gateway, bad, detail):
    dom = render(gateway.page(tumor=bad))
    [banner] = dom.testid("error")
    assert not banner.hidden, "expected the error banner to show"
    assert detail in banner.all_text(), banner.all_text()
    assert result_cards(dom) == []


def test_an_unknown_study_shows_the_problem_detail(gateway):
    dom = render(gateway.page(study="1.2.3.4.5.6.7.8.9"))
    [banner] = dom.testid("error")
    assert not banner.hidden and "unknown to TumorSearch" in banner.all_text(), banner.all_text()


def test_the_page_is_served_under_its_content_security_policy(gateway):
    with urllib.request.urlopen(gateway.url + "/ui/", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
        html = response.read().decode()
    assert "blob:" in policy.split("img-src", 1)[1].split(";", 1)[0], \
        f"expected img-src to allow blob: (the page shows thumbnails through blob: URLs); found {policy!r}"
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html
    for name in ("app.js", "style.css", "favicon.svg"):
        with urllib.request.urlopen(f"{gateway.url}/ui/{name}", timeout=10) as response:
            assert response.status == 200


@pytest.mark.parametrize("which, state, text", [
    ("failed_study", "Failed", FAILED_REASON),
    ("processing_study", "Processing", "refreshing every 5 s"),
])
def test_a_failed_or_unfinished_study_says_so(gateway, which, state, text):
    dom = render(gateway.page(study=getattr(gateway, which)))
    [shown] = dom.testid("study-state")
    assert shown.all_text().startswith(state), shown.all_text()
    assert text in dom.find_all("main")[0].all_text()
    assert dom.testid("study-tumor") == [] and dom.testid("error")[0].hidden
