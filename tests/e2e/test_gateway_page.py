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
The module starts its own Redis (as tests/integration/test_worker_studies.py does), so the index is built once.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import redis
from PIL import Image
from pydicom.uid import generate_uid

from shared.shipped_model import shipped_model_version
from services.worker.pipeline import PipelineConfig, process_study
from services.worker.runtime import load_runtime
from services.worker.tumours import SizeLimits
from shared.config.programs import WorkerSection
from shared.contracts.study_status import StudyStatus
from shared.contracts.tasks import StudyReady
from shared.contracts.vectors import collection_name
from shared.dicomize.writer import StudyIds, write_slice_study
from shared.model.checkpoint import SHIPPED
from shared.study_status_store import StudyStatusStore
from support.browser import CHROMIUM, Browser, Node, chromium, render
from support.ports import free_port
from support.processes import running
from support.servers import start_redis
from support.worker import TUMORSEARCH, WorkerSystem, worker_system

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / "var" / "test-artifacts"
# Fold 5 of figshare (never trained on), three per type.
IMAGES = {"glioma": (1873, 1874, 1872), "meningioma": (17, 18, 87), "pituitary": (940, 944, 1003)}
TYPES = tuple(IMAGES)
ADMIN_KEY = "page-test-" + "k" * 40  # the keyed gateway's bootstrap admin key (at least 32 characters)


# ------------------------------------------------------------------ a real index behind a real gateway

FAILED_REASON = "series 1.2.3: expected evenly spaced slices, found a gap of 12.0 mm (slice spacing 6.0 mm)"


@dataclass
class Gateway:
    url: str
    tumours: dict[str, list[str]]  # expert type -> point ids found in those studies
    studies: dict[int, str]        # image id -> study UID
    payloads: dict[str, dict]      # point id -> payload
    failed_study: str = ""
    processing_study: str = ""
    keyed_url: str = ""  # a gateway with authentication on (ADMIN_KEY)

    def page(self, **query: str | list[str]) -> str:
        return f"{self.url}/ui/?{urllib.parse.urlencode(query, doseq=True)}"

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())


def _index_figshare(system: WorkerSystem, data_dir: Path, workdir: Path, redis_url: str) -> Gateway:
    """The worker pipeline in-process on each image (one synthetic patient each), statuses in Redis."""
    section = WorkerSection()
    layout = system.layout
    layout.ensure()
    config = PipelineConfig(layout, section.series_rule, 1 << 30,
                            SizeLimits(section.min_tumor_area_mm2, section.min_tumor_volume_mm3), b"page-test-key")
    runtime = load_runtime(SHIPPED, "cpu")
    statuses = StudyStatusStore(redis.Redis.from_url(redis_url))
    store = system.store
    tumours: dict[str, list[str]] = {t: [] for t in TYPES}
    studies: dict[int, str] = {}
    root = data_dir / "figshare-cetumor"
    for expert_type, image_ids in IMAGES.items():
        for image_id in image_ids:
            image = np.asarray(Image.open(root / "images" / f"{image_id}.png").convert("L")).astype(np.uint16)
            files = write_slice_study(image, 0.98, workdir / "dicom" / str(image_id),
                                      StudyIds.fresh(f"PAGE-TEST-{image_id:04d}"))
            study_uid = system.place(files)
            message = StudyReady(study_instance_uid=study_uid, location=layout.study_location(study_uid),
                                 instance_count=len(files), handover=1)
            status = process_study(message, runtime, store, config)
            statuses.put(status)
            assert status.state in ("done", "no_tumour"), status
            tumours[expert_type] += status.point_ids
            studies[image_id] = study_uid
    ids = [i for found in tumours.values() for i in found]
    payloads = {p.id: p.payload for p in store.retrieve(collection_name(shipped_model_version()), ids)}
    # Two studies as the worker leaves them when things go wrong or take time (written as it writes them).
    failed, processing = generate_uid(), generate_uid()
    statuses.put(StudyStatus(study_instance_uid=failed, state="failed", reason=FAILED_REASON,
                             model_version=runtime.model_version, updated_at=time.time()))
    statuses.put(StudyStatus(study_instance_uid=processing, state="processing", updated_at=time.time()))
    return Gateway("", tumours, studies, payloads, failed, processing)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, data_dir) -> Iterator[Gateway]:
    if not CHROMIUM.is_file():
        pytest.fail(f"expected Debian's chromium at {CHROMIUM}; install it with apt-get install chromium",
                    pytrace=False)
    workdir = tmp_path_factory.mktemp("gateway-page")
    with ExitStack() as stack:
        redis_server = stack.enter_context(start_redis(workdir / "redis"))
        system = stack.enter_context(worker_system(workdir, redis_server.url, start=False))
        index = _index_figshare(system, data_dir, workdir, redis_server.url)
        # The local demo's gateway (no authentication), and one that wants a key, on the same index.
        index.url = stack.enter_context(_serving_gateway(workdir / "gateway.log", system.env,
                                                         TUMORSEARCH_GATEWAY__AUTH_DISABLED="true"))
        index.keyed_url = stack.enter_context(_serving_gateway(workdir / "gateway-keyed.log", system.env,
                                                               TUMORSEARCH_GATEWAY__BOOTSTRAP_ADMIN_KEY=ADMIN_KEY))
        yield index


@contextmanager
def _serving_gateway(log: Path, base_env: dict[str, str], **settings: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(base_env, TUMORSEARCH_GATEWAY__PORT=str(port), **settings)
    with running([str(TUMORSEARCH), "gateway"], log, env=env,
                 ready=lambda: urllib.request.urlopen(url + "/healthz", timeout=1).status == 200,
                 what=f"200 from {url}/healthz", timeout=60, name="gateway"):
        yield url


def _a_glioma(gateway: Gateway) -> str:
    """A tumour of an expert-labelled glioma study that the model also calls a glioma."""
    for point_id in gateway.tumours["glioma"]:
        if gateway.payloads[point_id]["tumor_type"] == "glioma":
            return point_id
    raise AssertionError(f"expected the model to call one of the glioma studies' tumours a glioma; found "
                         f"{[gateway.payloads[p]['tumor_type'] for p in gateway.tumours['glioma']]}")


def _cards(dom: Node) -> list[Node]:
    return dom.testid("result")


def _card_type(card: Node) -> str:
    [label] = card.testid("result-type")
    return label.all_text()


def _thumbs(node: Node) -> list[Node]:
    return [img for img in node.find_all("img") if "thumb" in img.attrs.get("class", "").split()]


# ------------------------------------------------------------------ the tests

def test_the_index_holds_enough_tumours_for_the_page(gateway):
    found = {t: len(ids) for t, ids in gateway.tumours.items()}
    assert sum(found.values()) >= 7, f"expected at least 7 tumours in nine tumour slices; found {found}"


def test_a_glioma_shows_the_query_and_similar_cases_with_thumbnails_and_labels(gateway):
    query_id = _a_glioma(gateway)
    url = gateway.page(tumor=query_id)
    dom = render(url)
    [error] = dom.testid("error")
    assert error.hidden, f"expected no error banner; found {error.all_text()!r}"
    [query] = dom.testid("query")
    text = query.all_text()
    assert "glioma" in text and "cm³" in text and "Hemisphere" in text, text
    assert gateway.payloads[query_id]["hemisphere"] in text
    [query_thumb] = _thumbs(query)
    assert query_thumb.attrs["src"].startswith("blob:") and query_thumb.attrs.get("data-loaded") == "true"

    cards = _cards(dom)
    assert len(cards) >= 5, f"expected at least 5 similar cases; found {len(cards)}"
    answer = gateway.api(f"/api/v1/tumors/{query_id}/similar")
    assert [c.attrs["data-id"] for c in cards] == [r["tumor"]["id"] for r in answer["results"]]
    assert query_id not in {c.attrs["data-id"] for c in cards}
    for card, result in zip(cards, answer["results"]):
        [img] = _thumbs(card)
        assert img.attrs["src"].startswith("blob:"), img.attrs
        assert img.attrs.get("data-loaded") == "true", f"expected the thumbnail to load; found {img.attrs}"
        assert _card_type(card) == result["tumor"]["labels"]["type"]
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
    query_id = _a_glioma(gateway)
    unfiltered = {c.attrs["data-id"] for c in _cards(render(gateway.page(tumor=query_id)))}
    dom = render(gateway.page(tumor=query_id, type="meningioma"))
    cards = _cards(dom)
    expected = [p for p, payload in gateway.payloads.items() if payload["tumor_type"] == "meningioma"]
    assert cards and len(cards) == min(len(expected), 10), \
        f"expected the {len(expected)} meningiomas; found {len(cards)}"
    assert {_card_type(c) for c in cards} == {"meningioma"}
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
    assert all(_thumbs(t)[0].attrs.get("data-loaded") == "true" for t in tumours)


@pytest.mark.parametrize("bad, detail", [
    (str(uuid.UUID(int=7)), "no tumour with this id in the index"),
    ("not-a-tumour", "expected a UUID"),
])
def test_a_bad_tumour_id_shows_the_problem_detail_in_the_banner(gateway, bad, detail):
    dom = render(gateway.page(tumor=bad))
    [banner] = dom.testid("error")
    assert not banner.hidden, "expected the error banner to show"
    assert detail in banner.all_text(), banner.all_text()
    assert _cards(dom) == []


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


@pytest.fixture
def browser(tmp_path) -> Iterator[Browser]:
    driven = Browser(str(tmp_path / "chromium-profile"))
    try:
        yield driven
    finally:
        driven.close()


def test_filter_controls_write_the_url_and_open_makes_a_case_the_query(gateway, browser):
    query_id = _a_glioma(gateway)
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
    browser.open(gateway.page(tumor=_a_glioma(gateway), hemisphere=["left", "midline"], min_size_mm3="1500", k="7"))
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
    query_id = _a_glioma(gateway)
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
