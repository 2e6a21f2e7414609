"""Headless Chromium for the web page's end-to-end tests, with no Python package beyond the stdlib: `render`
(`--dump-dom` until the page has settled) for what a link shows, `Browser` (the DevTools protocol over
`--remote-debugging-pipe`) for what a radiologist does, and a small DOM (`parse`, `Node`) to read the result."""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from support.processes import stop_pid

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ATTEMPTS = 4  # --dump-dom runs before a page that has not settled (a loaded machine) is a failure


# ------------------------------------------------------------------ the rendered DOM, read without a library

@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def all_text(self) -> str:
        return " ".join(" ".join(self.text + [c.all_text() for c in self.children]).split())

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [n for n in self.walk() if (tag is None or n.tag == tag)
                and all(n.attrs.get(k) == v for k, v in wanted.items())]

    def testid(self, name: str) -> list[Node]:
        return self.find_all(**{"data_testid": name})

    @property
    def hidden(self) -> bool:
        return "hidden" in self.attrs


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


def parse(html: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(html)
    return builder.root


# ------------------------------------------------------------------ Chromium

BROWSER_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                 "--disable-dev-shm-usage", "--window-size=1280,900")


def chromium(url: str, *extra: str, timeout: float = 120.0) -> str:
    """One headless Chromium run (its own process group, stopped by PID if it hangs); returns its stdout."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        process = subprocess.Popen([str(CHROMIUM), *BROWSER_FLAGS, f"--user-data-dir={profile}",
                                    "--virtual-time-budget=10000", *extra, url],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
        try:
            out, err = process.communicate(timeout=timeout)
        finally:
            stop_pid(process.pid, grace=2.0, popen=process)
    assert process.returncode == 0, f"chromium exited {process.returncode}: {err[-2000:]}"
    return out


class Browser:
    """Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON messages ending in
    NUL on fds 3 and 4), for what a URL alone cannot show: clicking controls and reading the address bar."""

    def __init__(self, profile: str) -> None:
        to_browser, from_us = os.pipe()
        to_us, from_browser = os.pipe()

        def _fds() -> None:  # in the child: our pipe ends become fds 3 (commands) and 4 (answers)
            commands, answers = os.dup(to_browser), os.dup(from_browser)
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        self.process = subprocess.Popen([str(CHROMIUM), *BROWSER_FLAGS, f"--user-data-dir={profile}",
                                         "--remote-debugging-pipe", "about:blank"], pass_fds=(3, 4),
                                        preexec_fn=_fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_browser)
        os.close(from_browser)
        self._out, self._in = from_us, to_us
        self._next, self._buffer, self.session = 0, b"", ""

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise AssertionError(f"DevTools {method}: {answer['error']}")
                return answer["result"]

    def _read(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            if not select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise AssertionError(f"expected an answer from Chromium within {timeout} s")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise AssertionError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]

    def js(self, expression: str):  # noqa: ANN201 - any JSON value
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Until the page says it is done and no thumbnail is still on its way."""
        deadline = time.monotonic() + timeout
        check = ("document.body && ['ready', 'error'].includes(document.body.dataset.status) && "
                 "!document.querySelector('img.thumb[data-loaded=pending]')")
        while not self.js(check):
            if time.monotonic() > deadline:
                raise AssertionError(f"expected the page to settle within {timeout} s; status "
                                     f"{self.js('document.body && document.body.dataset.status')}")
            time.sleep(0.1)

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except (AssertionError, OSError):
            pass
        stop_pid(self.process.pid, grace=5.0, popen=self.process)
        os.close(self._out)
        os.close(self._in)


def settled(dom: Node) -> bool:
    """The page said it is done, and no thumbnail is still on its way (each has loaded or given up)."""
    body = dom.find_all("body")
    if not body or body[0].attrs.get("data-status") not in ("ready", "error"):
        return False
    return not [img for img in dom.find_all("img") if img.attrs.get("data-loaded") == "pending"]


def render(url: str) -> Node:
    for _ in range(CHROMIUM_ATTEMPTS):
        dom = parse(chromium(url, "--dump-dom"))
        if settled(dom):
            return dom
        time.sleep(1.0)
    body = dom.find_all("body")
    raise AssertionError(f"expected the page at {url} to settle (body data-status ready/error, thumbnails "
                         f"loaded); found status {body[0].attrs if body else None} after {CHROMIUM_ATTEMPTS} runs")
