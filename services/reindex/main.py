"""`tumorsearch reindex`: hand every stored study the worker's model version has not processed to the worker
again — the archive-wide form of `POST /api/v1/admin/reindex/{study_uid}`, for an upgrade that brings a new
checkpoint (docs/deploy.md).

    tumorsearch reindex [--model-version V] [--all] [--dry-run] [--max-queued N] [--json PATH]

Run it where a worker runs, with the worker's environment: the same TUMORSEARCH_HOME (the stored studies),
broker and TUMORSEARCH_WORKER__CHECKPOINT (its version is what "current" means). It walks
<home>/studies/, reads each study's UID from its files, skips studies that version already settled
(`done`, `no_tumour`, or `failed` for a reason in the data, which it would give again) and hands the others over by task name, keeping at most --max-queued of them waiting
so that new studies from the PACS are not stuck behind the archive. Stopped and run again, it goes on where
it stopped. No UID or patient data is printed: folders are named by their storage location.

Exit status: 0 when every readable study is current, arriving or handed over and no folder was unreadable;
1 when some folders could not be read (listed in the summary) or the broker did not answer (at the start or
during the walk); 2 for a checkpoint without a version; 78 for a bad TUMORSEARCH_* setting; 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import pydicom
import redis
from celery import Celery

from services.reindex.handover import ReindexPlan, reindex_archive
from services.reindex.settings import ReindexSettings
from shared.broker.celery_config import celery_config
from shared.cli_args import positive_int
from shared.config.startup import settings_or_exit
from shared.contracts.storage import StudyLayout
from shared.logs import configure_logging
from shared.shipped_model import checkpoint_model_version

log = logging.getLogger("tumorsearch.reindex")
EXIT_INTERRUPTED = 130


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tumorsearch reindex", description="\n\n".join(__doc__.split("\n\n")[i] for i in (0, 2, 3)),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-version", metavar="V",
                   help="the version whose settled studies are skipped (default: the worker's checkpoint, "
                        "TUMORSEARCH_WORKER__CHECKPOINT, else the shipped one)")
    p.add_argument("--all", action="store_true", help="hand over every stored study, current ones too")
    p.add_argument("--dry-run", action="store_true", help="count what would be handed over; send nothing")
    p.add_argument("--max-queued", type=positive_int, default=20, metavar="N",
                   help="studies kept waiting in the worker's queue at most (default 20)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the summary there as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, cron jobs)")
    return p


def command(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    settings = settings_or_exit(ReindexSettings, os.environ, "reindex")
    configure_logging(settings.log.level, settings.log.format, "reindex")
    # pydicom's warnings about a non-conformant value quote the value: a UID must not reach the log that way.
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        version = args.model_version or checkpoint_model_version(settings.worker.checkpoint)
    except ValueError as error:
        print(f"tumorsearch reindex: {error}", file=sys.stderr)
        return 2
    client = redis.Redis.from_url(settings.broker.url, socket_timeout=10, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        print(f"tumorsearch reindex: expected the broker (TUMORSEARCH_BROKER__URL) to answer, found "
              f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    plan = ReindexPlan(version, everything=args.all, dry_run=args.dry_run, max_queued=args.max_queued)
    started = time.perf_counter()
    tally = reindex_archive(StudyLayout(settings.home), client, celery_sender(settings), plan,
                            progress=not args.no_progress)
    summary = {"model_version": version, "dry_run": args.dry_run, "all": args.all, **tally.as_dict(),
               "seconds": round(time.perf_counter() - started, 2)}
    report(summary, args.json)
    if tally.stopped and tally.stopped.startswith("interrupted"):
        return EXIT_INTERRUPTED
    return 1 if tally.unreadable or tally.stopped else 0


def celery_sender(settings: ReindexSettings):  # noqa: ANN201 - (task name, kwargs) -> None
    celery = Celery("tumorsearch-reindex", set_as_current=False)
    celery.conf.update(celery_config(settings.broker.url, settings.broker.visibility_timeout_s))
    return lambda name, kwargs: celery.send_task(name, kwargs=kwargs, retry=False)


def report(summary: dict, json_path: Path | None) -> None:
    verb = "would hand over" if summary["dry_run"] else "handed over"
    print(f"{summary['folders']} stored studies: {verb} {summary['handed_over']}, {summary['current']} already "
          f"processed by {summary['model_version']}, {summary['arriving']} still arriving (the listener hands "
          f"them over), {summary['empty']} empty, {summary['unreadable']} unreadable ({summary['seconds']} s)",
          flush=True)
    if summary["stopped"]:
        print(f"tumorsearch reindex: stopped early: {summary['stopped']}", file=sys.stderr, flush=True)
    for folder in summary["unreadable_folders"]:
        log.warning("study folder not handed over", extra=folder)
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
