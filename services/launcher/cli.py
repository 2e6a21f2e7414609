"""`tumorsearch`: one console script, one subcommand per program or tool.

Subcommands are entry points in the `tumorsearch.commands` group (pyproject.toml). Only the one asked
for is imported, so `tumorsearch gateway` never loads the worker's torch, and `--help` lists exactly
the subcommands this installation has.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

GROUP = "tumorsearch.commands"

# One line per subcommand for `--help`; the entry points decide which exist.
SUMMARIES = {
    "run": "start the whole system on this machine (broker, vector store, listener, worker, gateway)",
    "listener": "DICOM Storage SCP that receives studies from the PACS",
    "echo": "DICOM C-ECHO to a listener or PACS (exit 0 when it answers Success): health checks, helm test",
    "worker": "Celery worker that segments and embeds tumours",
    "gateway": "HTTP API and web page for similar-case search",
    "vectorstore": "serve the embedded vector store to the other programs of one machine",
    "bench": "measurements: `bench vectorstore|broker|listener|worker|query|system|model` (each --json PATH)",
    "demo": "start the system, push sample figshare studies by C-STORE, print the web page of a tumour",
    "dicomize": "write the figshare set or a NIfTI/NRRD volume as DICOM MR studies (benchmarks, demos)",
    "train": "train the multitask tumour model on the figshare folds",
    "evaluate": "retrieval mAP, Dice and the paper's criteria of a checkpoint on a test fold",
    "calibrate": "choose a checkpoint's mask threshold and flip averaging on a fold its chooser never saw",
    "expansion": "choose the similar-tumour query expansion on a fold its chooser never saw, over archive sizes",
    "dice": "where segmentation loses Dice on a test fold: by type, tumour size, failures; model averages",
    "project": "fit the closed-form embedding projection on a checkpoint's training folds",
    "reindex": "hand the stored studies the worker's model has not processed to it again (after a new checkpoint)",
    "validate": "the paper's validation (5-fold CV, embedding sizes, task ablation, robustness): docs/results/",
}


def available() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def usage(commands: dict[str, object]) -> str:
    width = max((len(name) for name in commands), default=0)
    lines = ["usage: tumorsearch COMMAND [ARGS...]", "", "commands:"]
    for name in sorted(commands):
        lines.append(f"  {name.ljust(width)}  {SUMMARIES.get(name, '')}".rstrip())
    lines += ["", "`tumorsearch COMMAND --help` describes one command. Settings: docs/configuration.md"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = available()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(commands))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"tumorsearch: unknown command {name!r}; expected one of: {', '.join(sorted(commands))}",
              file=sys.stderr)
        return 2
    command = commands[name].load()
    return int(command(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
