"""`tumorsearch demo`: `make run`, then real figshare studies through a real C-STORE, then the web page.

    tumorsearch demo [--studies N] [--keep-running | --no-keep-running] [--timeout SECONDS]

1. Finds the figshare set (TUMORSEARCH_DATA_DIR, else ../shared/data beside the repository); without it, says
   where to put it and exits 2 before starting anything.
2. Writes N of its images (a mix of the three tumour types from several folds) as DICOM studies into
   <TUMORSEARCH_HOME>/demo/dicom with `services.dicomize` (a re-run reuses them and their UIDs).
3. Starts `tumorsearch run` as a child (its log: <home>/demo/system.log) with the gateway's authentication off
   (a local demo on loopback), on free ports when the default ones are taken; waits for the listener's port and
   the gateway's /readyz.
4. Sends every file in one association (calling AE DEMO, MR Image Storage) to the listener.
5. Polls the gateway until each study is done, no_tumour or failed; prints a table.
6. Prints the web page of the first glioma's main tumour (and opens it when a display is available), writes
   <home>/demo/summary.json, then keeps the system running until Ctrl-C (or stops it: --no-keep-running).

Exit status: 0 when every file was accepted, every study processed and a tumour is there to show; 1 when not
(or the system failed); 2 when the data or a requested port is not there; 78 for a bad TUMORSEARCH_* setting.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import webbrowser
from collections.abc import Mapping
from pathlib import Path

from services.demo import report
from services.demo.samples import DemoError, Sample, figshare_dir, read_samples, write_selection
from services.demo.settings import DemoSettings
from services.demo.system import CALLING_AE, System, get_json, http_status, plan
from shared.config.startup import settings_or_exit
from shared.cli_args import positive_int

DEFAULT_STUDIES = 24
EXIT_INTERRUPTED = 130
# `tumorsearch run` gives each of its four programs TUMORSEARCH_RUN__START_TIMEOUT_S (default 60 s) to start and
# all of them TUMORSEARCH_RUN__STOP_TIMEOUT_S (default 6 s, at most 30) to stop, the broker 2 s more.
START_TIMEOUT_S = 300.0
STOP_GRACE_S = 40.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tumorsearch demo",
        description="Start the whole system (as `make run`), push real figshare studies to its DICOM listener with "
                    "a C-STORE, wait until they are processed and show the web page on a tumour. Data: "
                    "figshare-cetumor/ in TUMORSEARCH_DATA_DIR (default ../shared/data beside the repository); "
                    "everything written goes under TUMORSEARCH_HOME (default ./var), in demo/.")
    p.add_argument("--studies", type=positive_int, default=DEFAULT_STUDIES, metavar="N",
                   help=f"figshare images to send, a mix of the three tumour types from several folds "
                        f"(default {DEFAULT_STUDIES})")
    p.add_argument("--keep-running", action=argparse.BooleanOptionalAction, default=True,
                   help="keep the system running until Ctrl-C (default), or stop it once the summary is written")
    p.add_argument("--timeout", type=positive_int, default=900, metavar="SECONDS",
                   help="longest wait for the studies to be processed (default 900)")
    return p


def command(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        return Demo(args, os.environ).run()
    except DemoError as error:
        print(f"tumorsearch demo: {error}", file=sys.stderr, flush=True)
        return error.code
    except KeyboardInterrupt:
        print("tumorsearch demo: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


class Demo:
    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
        self.args, self.environ = args, environ
        self.timings: dict[str, float] = {}

    def run(self) -> int:
        started = time.monotonic()
        root = figshare_dir(settings_or_exit(DemoSettings, self.environ, "demo"))  # exit 2 before anything
        home = settings_or_exit(DemoSettings, self.environ, "demo").home.resolve()
        demo_dir = home / "demo"
        system_plan = plan(self.environ)  # every setting checked (and free ports found) before anything is written
        for note in system_plan.notes:
            say(note)
        samples = self._dicomize(root, demo_dir)
        system = System(system_plan, demo_dir / "system.log")
        previous = _signals_as_interrupt()
        try:
            system.start()
            ok, summary = self._show(system, samples, demo_dir)
            self.timings["total"] = round(time.monotonic() - started, 1)
            summary["timings_s"] = self.timings
            report.write_summary(demo_dir / "summary.json", summary)
            say(f"summary: {demo_dir / 'summary.json'}")
            say("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()))
            if summary["url"] and self.args.keep_running:
                _open_page(summary["url"], self.environ)
            if self.args.keep_running:
                return self._keep_running(system, ok)
            return 0 if ok else 1
        except KeyboardInterrupt:
            say("interrupted")
            return EXIT_INTERRUPTED
        finally:
            _ignore_signals(previous)  # a second Ctrl-C must not cut the stop short and leave programs behind
            say(f"stopping the system (pid {system.pid}) ...")
            stopping = time.monotonic()
            code = system.stop(STOP_GRACE_S)
            say(f"stopped in {time.monotonic() - stopping:.1f} s (tumorsearch run exit code {code})")
            _restore_signals(previous)

    def _dicomize(self, root: Path, demo_dir: Path) -> list[Sample]:
        from shared.dicomize.figshare import dicomize_figshare  # PIL and pydicom: only once the data is there
        from shared.dicomize.output import DicomizeError

        begun = time.monotonic()
        try:
            image_ids = write_selection(root, demo_dir / "selection", self.args.studies)
            summary = dicomize_figshare(demo_dir / "selection", demo_dir / "dicom")
        except DicomizeError as error:
            raise DemoError(str(error), code=2) from None
        say(summary.line().replace("tumorsearch dicomize: ", "dicomize: "))
        self.timings["dicomize"] = round(time.monotonic() - begun, 1)
        return read_samples(demo_dir / "dicom", image_ids)

    def _show(self, system: System, samples: list[Sample], demo_dir: Path) -> tuple[bool, dict]:
        settings, gateway = system.plan.settings, system.plan.gateway_url
        host, port = system.plan.listener_address
        self._start(system)
        earlier = {uid for uid, body in report.states(gateway, samples).items() if body.get("state") in report.TERMINAL}
        accepted, sent = self._push(system, samples)
        if earlier:
            say(f"{len(earlier)} of these studies were processed by an earlier demo run in this home; the worker "
                "processes them again")
        begun = time.monotonic()
        waiting = [s for s in samples if accepted.get(s.study_uid)]
        results = report.wait_processed(gateway, waiting, self.args.timeout, system.check_alive)
        self.timings["processing"] = round(time.monotonic() - begun, 1)
        study_rows = report.rows(samples, accepted, results, earlier)
        print(report.table(study_rows), flush=True)
        url, tumor, checks = _showcase(gateway, samples, results)
        processed = sum(1 for row in study_rows if row["state"] in report.TERMINAL)
        studies_accepted = sum(1 for s in samples if accepted.get(s.study_uid))
        ok = (sum(accepted.values()) == len(sent) and processed == len(samples) and url is not None
              and checks.get("tumor") == 200)
        say(f"demo: studies={len(samples)} accepted={studies_accepted} processed={processed} url={url or '-'} "
            f"ok={str(ok).lower()}")
        return ok, {
            "ok": ok, "studies": study_rows, "instances_sent": len(sent), "instances_accepted": sum(accepted.values()),
            "studies_accepted": studies_accepted, "studies_processed": processed,
            "url": url, "tumor": tumor, "checks_http_status": checks, "gateway": gateway,
            "listener": {"ae_title": settings.listener.ae_title, "host": host, "port": port,
                         "calling_ae_title": CALLING_AE},
            "home": str(settings.home), "dicom": str(demo_dir / "dicom"), "system_log": str(system.log_path),
        }

    def _start(self, system: System) -> None:
        host, port = system.plan.listener_address
        say(f"starting the system (`tumorsearch run`, pid {system.pid}, log {system.log_path}) ...")
        begun = time.monotonic()
        system.wait_ready(START_TIMEOUT_S)
        self.timings["start"] = round(time.monotonic() - begun, 1)
        say(f"ready in {self.timings['start']:.1f} s: gateway {system.plan.gateway_url}, listener "
            f"{system.plan.settings.listener.ae_title}@{host}:{port}")

    def _push(self, system: System, samples: list[Sample]) -> tuple[dict[str, int], list]:
        """C-STORE every sample's files; (instances accepted per study UID, the answer to each file)."""
        from services.demo.store import send  # pydicom and pynetdicom: only once the system is up

        host, port = system.plan.listener_address
        called = system.plan.settings.listener.ae_title
        files = [(sample, path) for sample in samples for path in sample.files]
        begun = time.monotonic()
        sent = send([path for _, path in files], host, port, CALLING_AE, called)
        self.timings["c_store"] = round(time.monotonic() - begun, 1)
        accepted: dict[str, int] = {}
        for (sample, _), result in zip(files, sent):
            accepted[sample.study_uid] = accepted.get(sample.study_uid, 0) + int(result.accepted)
        refused = sorted({f"0x{r.status:04X}" if r.status is not None else "no answer" for r in sent
                          if not r.accepted})
        say(f"C-STORE {CALLING_AE} -> {called}@{host}:{port}: {sum(accepted.values())} of {len(sent)} instances "
            f"accepted ({len(samples)} studies) in {self.timings['c_store']:.1f} s"
            + (f"; refused: {', '.join(refused)}" if refused else ""))
        return accepted, sent

    def _keep_running(self, system: System, ok: bool) -> int:
        say("TumorSearch is running; Ctrl-C stops it")
        try:
            while system.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0 if ok else 1
        say(f"`tumorsearch run` exited on its own; see {system.log_path}")
        return 1


def say(text: str) -> None:
    print(text, flush=True)


def has_display(environ: Mapping[str, str]) -> bool:
    return sys.platform == "darwin" or bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def _open_page(url: str, environ: Mapping[str, str]) -> None:
    if not has_display(environ):
        say("no display here: open the address above in a browser")
        return
    try:
        webbrowser.open(url)
    except Exception as error:  # noqa: BLE001 - a browser that will not start is no reason to stop the demo
        say(f"could not open a browser ({type(error).__name__}); open the address above")


def _signals_as_interrupt() -> dict | None:
    """SIGTERM and SIGINT stop the demo as Ctrl-C does (so the system is stopped too), even when the demo was
    started with SIGINT ignored (a background job of a script). Only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def _raise(signum, frame):  # noqa: ANN001
        raise KeyboardInterrupt

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        handler = signal.signal(signum, _raise)
        previous[signum] = signal.SIG_DFL if handler is None else handler  # None: not set from Python
    return previous


def _ignore_signals(previous: dict | None) -> None:
    for signum in previous or {}:
        signal.signal(signum, signal.SIG_IGN)


def _restore_signals(previous: dict | None) -> None:
    for signum, handler in (previous or {}).items():
        signal.signal(signum, handler)


if __name__ == "__main__":  # `python -m services.demo.main …` before the entry point is installed
    sys.exit(command(sys.argv[1:]))


def _showcase(gateway: str, samples: list[Sample], results: dict) -> tuple[str | None, dict | None, dict[str, int]]:
    """The web page of the first glioma's main tumour (else another type's): (url, tumour, HTTP checks)."""
    chosen = report.showcase(samples, results)
    if chosen is None:
        say("no study has a tumour to show (see the states above and the system log)")
        return None, None, {}
    sample, main = chosen
    url = f"{gateway}/ui/?tumor={main['id']}"
    checks = {"tumor": get_json(f"{gateway}/api/v1/tumors/{main['id']}")[0], "page": http_status(f"{gateway}/ui/")}
    tumor = {"id": main["id"], "study_instance_uid": sample.study_uid, "image_id": sample.image_id,
             "type": sample.label, "predicted_type": main["labels"]["type"], "size_mm3": main["labels"]["size_mm3"]}
    what = "the first glioma's main tumour" if sample.label == "glioma" else \
        f"no glioma has a tumour; the first {sample.label}'s main tumour"
    say(f"web page on {what} (image {sample.image_id:04d}, predicted {main['labels']['type']}):\n  {url}")
    return url, tumor, checks
