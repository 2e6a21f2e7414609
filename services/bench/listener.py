"""`tumorsearch bench listener`: C-STORE throughput of our listener against dcmtk's own `storescp`.

One synthetic 160-slice 256x256 MR series (pydicom, into a temporary folder) is sent with dcmtk's
`storescu` over one association on loopback, `TCP_NODELAY=1` on both sides, first to `storescp`
(which writes files, no fsync), then to `tumorsearch listener` (fsync of the file and of its folder
before every acknowledgement, outbox marker, Redis). Figures and the machine: docs/listener.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from shared.broker.embedded import DEBIAN_REDIS, EmbeddedBroker, free_port

STORESCU, STORESCP = "/usr/bin/storescu", "/usr/bin/storescp"
CALLING_AE, LISTENER_AE = "BENCH", "TUMORSEARCH"


def synthesize_series(folder: Path, slices: int, size: int, study_uid: str | None = None) -> list[Path]:
    """A single MR series of `slices` files (size x size, 16-bit, explicit VR LE); no patient data."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    rng = np.random.default_rng(7)
    paths = []
    for index in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.Modality, ds.PatientName, ds.PatientID = "MR", "Synthetic^Bench", "SYNTH0001"
        ds.InstanceNumber, ds.ImagePositionPatient = index + 1, [0.0, 0.0, float(index)]
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = rng.integers(0, 4096, (size, size), dtype=np.uint16).tobytes()
        path = folder / f"slice{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
