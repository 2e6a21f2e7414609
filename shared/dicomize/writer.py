"""Write integer pixel arrays as DICOM MR Image Storage series that a PACS, dcmtk and the worker accept.

Why: the benchmark slices (PNG) and 3D volumes (NRRD/NIfTI) have no DICOM form, yet everything after the
listener reads DICOM. A file carries only synthetic identifiers (`StudyIds`), fresh UIDs, the source grid's
geometry and fixed acquisition values; nothing else from any source file is copied.

Geometry convention: `affine_lps` maps (column index i, row index j, slice index k, 1) to patient LPS mm, and
slice k of the series is `volume[k]`, a (rows, cols) image, so volume[k, j, i] sits at affine_lps @ (i, j, k, 1).
"""

from __future__ import annotations

import copy
import datetime
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless, MRImageStorage, RLELossless, generate_uid

from shared.dicomize.values import (check_series_values, check_text, check_uid, clinical_trial_values,
                                    ds_value)

# Transfer syntax -> pydicom encoding plugin (None: written uncompressed). Only lossless syntaxes: the
# pixels must round-trip exactly. JPEG 2000 Lossless is encoded by pylibjpeg-openjpeg, RLE by pylibjpeg-rle.
SUPPORTED_TRANSFER_SYNTAXES: dict[str, str | None] = {
    ExplicitVRLittleEndian: None, JPEG2000Lossless: "pylibjpeg", RLELossless: "pylibjpeg"}
# pylibjpeg-openjpeg encodes with a fixed 6 DWT resolutions, which OpenJPEG refuses below 2**5 pixels a side.
J2K_MIN_SIDE = 32
PIXEL_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int16))
# Cosine below which two axes count as orthogonal (or parallel); headers stored as float32 carry ~1e-6 noise.
AXIS_TOLERANCE = 1e-4
# A plausible 2D spin-echo T1 (the usual post-gadolinium sequence of 6-6.5 mm slices). No real acquisition:
# the MR Image module requires these (type 1/2), and they tell a reader which weighting to expect.
T1_SPIN_ECHO = {
    "ScanningSequence": "SE", "SequenceVariant": "NONE", "ScanOptions": "", "MRAcquisitionType": "2D",
    "RepetitionTime": "500", "EchoTime": "15", "EchoTrainLength": "1",
}
# DERIVED/SECONDARY: the pixels were converted from another file, not reconstructed by a scanner.
IMAGE_TYPE = ["DERIVED", "SECONDARY", "OTHER"]


@dataclass(frozen=True)
class StudyIds:
    """The identifiers of one synthetic study and series; never a real patient's."""

    patient_id: str            # synthetic, e.g. "FIGSHARE-P0001"; never a real identifier
    patient_name: str          # synthetic
    study_uid: str             # pydicom.uid.generate_uid() when the caller has none
    series_uid: str
    accession: str = ""

    def __post_init__(self) -> None:
        check_text(self.patient_id, "patient_id", 64, required=True)       # LO
        check_text(self.patient_name, "patient_name", 64, required=True)   # PN, one component group
        check_text(self.accession, "accession", 16, required=False)        # SH
        check_uid(self.study_uid, "study_uid")
        check_uid(self.series_uid, "series_uid")
        if self.study_uid == self.series_uid:
            raise ValueError(f"StudyIds: expected different study and series UIDs, found {self.study_uid} twice")

    @classmethod
    def fresh(cls, patient_id: str, patient_name: str | None = None) -> StudyIds:
        """New study and series UIDs for `patient_id`; the name defaults to a synthetic one built from it."""
        name = patient_name if patient_name is not None else f"Synthetic^{patient_id}"
        return cls(patient_id, name, generate_uid(), generate_uid())


@dataclass(frozen=True)
class _Geometry:
    """What the DICOM Image Plane module needs, derived once from a checked affine."""

    affine: np.ndarray
    row_direction: np.ndarray     # unit vector along a row (column index i increasing)
    column_direction: np.ndarray  # unit vector down a column (row index j increasing)
    normal: np.ndarray            # row x column: the axis SliceLocation is measured along
    column_spacing: float         # |affine[:3, 0]|, mm between adjacent columns
    row_spacing: float            # |affine[:3, 1]|, mm between adjacent rows
    slice_spacing: float          # |affine[:3, 2]|


def write_volume_series(volume: np.ndarray, affine_lps: np.ndarray, out_dir: Path, ids: StudyIds, *,
                        series_description: str = "T1 post-contrast", series_number: int = 1,
                        transfer_syntax: str = ExplicitVRLittleEndian, contrast_agent: str | None = "gadolinium",
                        instance_uids: list[str] | None = None,
                        clinical_trial: Mapping[str, str] | None = None) -> list[Path]:
    """volume: (K, rows, cols) integer array (uint8/uint16/int16); slice k is volume[k].
    affine_lps: 4x4, maps (column index i, row index j, slice index k, 1) -> patient LPS mm.
    clinical_trial: Clinical Trial Subject/Study attributes by keyword (CLINICAL_TRIAL_ATTRIBUTES), e.g. the
    benchmark fold as ClinicalTrialTimePointID; None writes neither module.
    Writes one MR Image Storage file per slice, names slice0000.dcm, slice0001.dcm... (never from UIDs)."""
    pixels = _checked_pixels(volume)
    geometry = _geometry(affine_lps)
    plugin = _plugin_for(transfer_syntax, pixels.shape)
    check_series_values(series_description, series_number, contrast_agent)
    trial = clinical_trial_values(clinical_trial)
    uids = _instance_uids(instance_uids, len(pixels), ids)
    out_dir = Path(out_dir)
    paths = [out_dir / f"slice{k:04d}.dcm" for k in range(len(pixels))]
    existing = [p.name for p in paths if p.exists()]
    if existing:  # mixing two series' files in one folder would make one broken series
        raise FileExistsError(f"{out_dir}: expected no slice files yet, found {existing[:3]} ({len(existing)} in all)")
    out_dir.mkdir(parents=True, exist_ok=True)
    base = _series_dataset(ids, pixels, geometry, series_description, series_number, contrast_agent)
    for keyword, value in trial.items():
        setattr(base, keyword, value)
    for k, path in enumerate(paths):
        ds = _slice_dataset(base, geometry, k, uids[k])
        _set_pixels(ds, pixels[k], transfer_syntax, plugin)
        dcmwrite(path, ds, enforce_file_format=True)
    return paths


def write_slice_study(image: np.ndarray, spacing_mm: float, out_dir: Path, ids: StudyIds, *,
                      slice_thickness_mm: float = 6.0, **kwargs) -> list[Path]:
    """One 2D image (rows, cols) as a one-slice axial series: identity orientation (rows along +Y posterior,
    columns along +X left, i.e. ImageOrientationPatient 1,0,0,0,1,0), PixelSpacing = spacing_mm, origin 0."""
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"image: expected a 2D (rows, cols) array, found shape {array.shape}")
    for what, value in (("spacing_mm", spacing_mm), ("slice_thickness_mm", slice_thickness_mm)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value > 0):
            raise ValueError(f"{what}: expected a positive number of millimetres, found {value!r}")
    affine = np.diag([float(spacing_mm), float(spacing_mm), float(slice_thickness_mm), 1.0])
    return write_volume_series(array[np.newaxis], affine, out_dir, ids, **kwargs)


def affine_lps_from_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(volume (K, rows, cols), affine_lps) from a NIfTI (.nii/.nii.gz, RAS) or NRRD file, for write_volume_series.
    Use shared.model.volumes.read_volume(path) -> (data indexed [x, y, z] as stored, 4x4 voxel-to-RAS affine);
    convert RAS->LPS (negate the first two rows), and transpose the data to (z, y, x) = (k, j, i) so that the
    file's first axis is the column index i, second the row index j, third the slice index k."""
    # Imported here: shared.model imports torch, and writing DICOM from arrays must not need it.
    from shared.model.volumes import read_volume

    data, affine_ras = read_volume(Path(path))
    affine_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine_ras, dtype=float)
    volume = np.ascontiguousarray(np.transpose(np.asarray(data), (2, 1, 0)))
    return _as_pixel_dtype(volume, Path(path)), affine_lps


def _as_pixel_dtype(volume: np.ndarray, source: Path) -> np.ndarray:
    """The same values in int16 or uint16 when that is lossless (label files are often int32, NIfTI float)."""
    if volume.dtype in PIXEL_DTYPES:
        return volume
    if volume.dtype == np.bool_:
        return volume.astype(np.uint8)
    if not np.issubdtype(volume.dtype, np.number) or not np.isfinite(volume).all() \
            or not np.array_equal(volume, np.round(volume)):
        raise ValueError(f"{source}: expected whole-number voxel values, found {volume.dtype} values that are not; "
                         "rescale to integers first")
    low, high = volume.min(), volume.max()
    for dtype in (np.int16, np.uint16):
        if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
            return volume.astype(dtype)
    raise ValueError(f"{source}: expected voxel values that fit 16 bits, found the range [{low}, {high}]")


def _checked_pixels(volume: np.ndarray) -> np.ndarray:
    """(K, rows, cols) little-endian 16-bit pixels; uint8 is widened because the series is 16-bit."""
    array = np.asarray(volume)
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"volume: expected a non-empty (K, rows, cols) array, found shape {array.shape}")
    if array.shape[1] > 65535 or array.shape[2] > 65535:
        raise ValueError(f"volume: expected at most 65535 rows and columns (US), found {array.shape[1:]}")
    if array.dtype.newbyteorder("=") not in PIXEL_DTYPES:
        raise ValueError(f"volume: expected dtype uint8, uint16 or int16, found {array.dtype}")
    target = np.dtype("<i2") if array.dtype.kind == "i" else np.dtype("<u2")
    return np.ascontiguousarray(array.astype(target, copy=False))


def _geometry(affine_lps: np.ndarray) -> _Geometry:
    """Check that the affine is a DICOM-expressible grid (orthogonal rows/columns, no slice shear)."""
    affine = np.asarray(affine_lps, dtype=float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise ValueError(f"affine_lps: expected a finite 4x4 matrix, found shape {affine.shape}")
    if not np.allclose(affine[3], [0, 0, 0, 1]):
        raise ValueError(f"affine_lps: expected the last row 0, 0, 0, 1, found {affine[3].tolist()}")
    spacings = np.linalg.norm(affine[:3, :3], axis=0)
    if (spacings < 1e-6).any():
        raise ValueError(f"affine_lps: expected non-zero voxel spacings, found {spacings.tolist()}")
    row, column, slice_axis = (affine[:3, n] / spacings[n] for n in range(3))
    if abs(row @ column) > AXIS_TOLERANCE:
        raise ValueError(f"affine_lps: expected orthogonal row and column axes, found cosine {row @ column:.6f}")
    normal = np.cross(row, column)
    if np.linalg.norm(np.cross(normal, slice_axis)) > AXIS_TOLERANCE:
        raise ValueError("affine_lps: expected the slice axis along the image normal (DICOM slices cannot "
                         f"express shear), found {slice_axis.round(6).tolist()} and {normal.round(6).tolist()}")
    return _Geometry(affine, row, column, normal, float(spacings[0]), float(spacings[1]), float(spacings[2]))


def _plugin_for(transfer_syntax: str, shape: tuple[int, ...]) -> str | None:
    """The encoding plugin, checked before any file is written so a refusal never leaves half a series."""
    if transfer_syntax not in SUPPORTED_TRANSFER_SYNTAXES:
        names = ", ".join(f"{UID(u).name} ({u})" for u in SUPPORTED_TRANSFER_SYNTAXES)
        raise ValueError(f"transfer_syntax: expected one of {names}, found {transfer_syntax!r}")
    if transfer_syntax == JPEG2000Lossless and min(shape[1:]) < J2K_MIN_SIDE:
        raise ValueError(f"JPEG 2000 Lossless: expected images of at least {J2K_MIN_SIDE}x{J2K_MIN_SIDE} pixels "
                         f"(pylibjpeg-openjpeg uses 6 wavelet levels), found {shape[1]}x{shape[2]}; use RLE Lossless")
    return SUPPORTED_TRANSFER_SYNTAXES[transfer_syntax]


def _instance_uids(given: list[str] | None, count: int, ids: StudyIds) -> list[str]:
    if given is None:
        return [generate_uid() for _ in range(count)]
    given = list(given)
    if len(given) != count:
        raise ValueError(f"instance_uids: expected one UID per slice ({count}), found {len(given)}")
    for k, uid in enumerate(given):
        check_uid(uid, f"instance_uids[{k}]")
    if len(set(given)) != count or {ids.study_uid, ids.series_uid} & set(given):
        raise ValueError("instance_uids: expected distinct UIDs, different from the study and series UIDs; "
                         "found a repeated one")
    return given


def _series_dataset(ids: StudyIds, pixels: np.ndarray, geometry: _Geometry, description: str,
                    series_number: int, contrast_agent: str | None) -> Dataset:
    """Everything the slices of one series share: patient, study, series, frame of reference, pixel format."""
    now = datetime.datetime.now()
    ds = Dataset()
    ds.SOPClassUID, ds.ImageType, ds.Modality = MRImageStorage, IMAGE_TYPE, "MR"
    ds.StudyDate, ds.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.AccessionNumber, ds.SeriesDescription = ids.accession, description
    ds.PatientName, ds.PatientID = ids.patient_name, ids.patient_id
    # Type 2 (present, may be empty) in the Patient, Study and Equipment modules; nothing to say, so empty.
    ds.PatientBirthDate = ds.PatientSex = ds.ReferringPhysicianName = ds.Manufacturer = ""
    if contrast_agent is not None:
        ds.ContrastBolusAgent = contrast_agent
    for keyword, value in T1_SPIN_ECHO.items():
        setattr(ds, keyword, value)
    ds.SliceThickness = ds.SpacingBetweenSlices = ds_value(geometry.slice_spacing)
    ds.PatientPosition = "HFS"  # type 2C for MR; the LPS affine already is the patient frame
    ds.StudyInstanceUID, ds.SeriesInstanceUID = ids.study_uid, ids.series_uid
    ds.SeriesNumber = series_number
    ds.ImageOrientationPatient = [ds_value(v) for v in (*geometry.row_direction, *geometry.column_direction)]
    ds.FrameOfReferenceUID = generate_uid()  # one per series: its slices share one patient frame
    ds.PositionReferenceIndicator = ds.StudyID = ""  # type 2, no landmark and no scanner study number
    _pixel_module(ds, pixels)
    ds.PixelSpacing = [ds_value(geometry.row_spacing), ds_value(geometry.column_spacing)]
    ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
    return ds


def _pixel_module(ds: Dataset, pixels: np.ndarray) -> None:
    """Image Pixel module: 16 bits allocated; 12 stored when every value fits, as MR scanners usually write."""
    signed = pixels.dtype.kind == "i"
    low, high = int(pixels.min()), int(pixels.max())
    fits_12 = (-2048 <= low and high <= 2047) if signed else high <= 4095
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[1]), int(pixels.shape[2])
    ds.BitsAllocated, ds.BitsStored = 16, 12 if fits_12 else 16
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, int(signed)


def _slice_dataset(base: Dataset, geometry: _Geometry, k: int, instance_uid: str) -> Dataset:
    ds = copy.deepcopy(base)
    ds.file_meta = FileMetaDataset()
    ds.SOPInstanceUID, ds.InstanceNumber = instance_uid, k + 1
    position = (geometry.affine @ np.array([0.0, 0.0, float(k), 1.0]))[:3]
    ds.ImagePositionPatient = [ds_value(v) for v in position]
    ds.SliceLocation = ds_value(position @ geometry.normal)
    return ds


def _set_pixels(ds: Dataset, frame: np.ndarray, transfer_syntax: str, plugin: str | None) -> None:
    if plugin is None:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        ds.add_new(0x7FE00010, "OW", frame.tobytes())
        return
    # generate_instance_uid=False: the SOP Instance UID was chosen by the caller (or above), keep it.
    ds.compress(transfer_syntax, frame, encoding_plugin=plugin, generate_instance_uid=False)
