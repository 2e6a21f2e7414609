"""`tumorsearch dicomize`: turn the figshare benchmark images, or one NIfTI/NRRD volume, into DICOM MR studies.

    tumorsearch dicomize --out DIR [--figshare DIR] [--folds 1,2] [--limit N] [--transfer-syntax ...]
    tumorsearch dicomize --volume IMAGE [--mask MASK] --out DIR [--description TEXT] [--transfer-syntax ...]

Figshare mode (the default): each image becomes its own one-slice study, OUT/<image id>/slice0000.dcm, with the
benchmark fold as ClinicalTrialTimePointID "fold-N"; OUT/mapping.csv links the generated UIDs to image id, tumour
type and fold. Volume mode: OUT/series/slice*.dcm, OUT/mapping.csv and, with --mask, OUT/lesion.json. Both are
resumable: studies already written are skipped and never get new UIDs. Exit status 2: the data, the arguments or
the output folder are not what is expected (the message says what to do).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from shared.dicomize.output import DicomizeError
from shared.cli_args import positive_int

TRANSFER_SYNTAXES = {"explicit": ExplicitVRLittleEndian, "jpeg2000": JPEG2000Lossless, "rle": RLELossless}
EXIT_REFUSED = 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tumorsearch dicomize",
        description="Write the figshare benchmark images (default) or one NIfTI/NRRD volume (--volume) as DICOM MR "
                    "studies with synthetic patients and fresh UIDs. Re-running skips what is already written.")
    p.add_argument("--out", type=Path, required=True, help="output folder (mapping.csv and one folder per study)")
    p.add_argument("--transfer-syntax", choices=sorted(TRANSFER_SYNTAXES), default="explicit",
                   help="lossless encoding of the pixels (default: explicit VR little endian, uncompressed)")
    figshare = p.add_argument_group("figshare mode (the default)")
    figshare.add_argument("--figshare", type=Path, default=None,
                          help="figshare folder with labels.csv and images/ (default: figshare-cetumor/ in "
                               "TUMORSEARCH_DATA_DIR, else ../shared/data beside the repository)")
    figshare.add_argument("--folds", type=_folds, default=None, help="only these benchmark folds, e.g. 1,2")
    figshare.add_argument("--limit", type=positive_int, default=None,
                          help="only the first N images (after --folds), in labels.csv order")
    volume = p.add_argument_group("volume mode")
    volume.add_argument("--volume", type=Path, default=None, metavar="IMAGE",
                        help="a NIfTI (.nii, .nii.gz) or NRRD (.nrrd, .nhdr) volume with whole-number voxels")
    volume.add_argument("--mask", type=Path, default=None,
                        help="a lesion mask on the same grid (any value > 0 is lesion): writes OUT/lesion.json")
    volume.add_argument("--description", default="T1 post-contrast", help="SeriesDescription (at most 64 characters)")
    return p


def command(argv: list[str]) -> int:
    p = parser()
    args = p.parse_args(argv)
    syntax = TRANSFER_SYNTAXES[args.transfer_syntax]
    if args.volume is None:
        if args.mask is not None or args.description != p.get_default("description"):
            p.error("--mask and --description need --volume")
        return _figshare(args, syntax)
    if args.figshare is not None or args.folds is not None or args.limit is not None:
        p.error("--figshare, --folds and --limit are for the figshare mode, not with --volume")
    from shared.dicomize.volume import dicomize_volume

    return _run(lambda: dicomize_volume(args.volume, args.out, mask=args.mask, description=args.description,
                                        transfer_syntax=syntax), ("series", "series"))


def _figshare(args: argparse.Namespace, syntax: str) -> int:
    from shared.dicomize.figshare import dicomize_figshare

    root = args.figshare
    if root is None:  # the environment is read here, in the command's entry, and nowhere below it
        from services.dicomize.settings import DicomizeSettings
        from shared.config.startup import settings_or_exit

        root = settings_or_exit(DicomizeSettings, os.environ, "dicomize").figshare_dir
    return _run(lambda: dicomize_figshare(root, args.out, folds=args.folds, limit=args.limit,
                                          transfer_syntax=syntax), ("study", "studies"))


def _run(job, units: tuple[str, str]) -> int:  # noqa: ANN001 - a function returning a Summary
    try:
        summary = job()
    except DicomizeError as error:
        print(f"tumorsearch dicomize: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(summary.line(*units), flush=True)
    return 0


def _folds(text: str) -> frozenset[int]:
    try:
        folds = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fold numbers separated by commas, e.g. 1,2; "
                                         f"found {text!r}") from None
    if not folds or min(folds) < 1:
        raise argparse.ArgumentTypeError(f"expected fold numbers 1 and up, e.g. 1,2; found {text!r}")
    return folds


if __name__ == "__main__":  # `python -m services.dicomize.main …` before the entry point is installed
    sys.exit(command(sys.argv[1:]))
