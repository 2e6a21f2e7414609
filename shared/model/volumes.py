"""3D MRI volumes for the dims=3 network: a labels CSV, NRRD/NIfTI reading, and one preprocessing rule.

Labels CSV (UTF-8, header row required, paths relative to the CSV's folder unless absolute):

    volume_id,image,mask,fold,type
    brain1,tcga/brain1_image.nrrd,tcga/brain1_label.nrrd,1,glioma
    met110,brats/t1c.nii.gz,brats/t1c_pseudo_seg.nii.gz,2,metastasis
    brain9,tcga/brain9_image.nrrd,,1,

- volume_id: unique name; image: .nrrd/.nhdr (pynrrd) or .nii/.nii.gz (nibabel);
- mask: same grid as the image, any label > 0 is tumour; empty = no segmentation for that volume;
- fold: integer (cross-validation fold); type: one of VOLUME_TYPES, empty = missing label.

Preprocessing (the same for training and evaluation):
1. orientation from the header, reordered so the array is (D, H, W) = (towards superior, towards
   posterior, towards patient left): an axial slice [d] then looks like a radiological DICOM image;
2. resampling to about `spacing_mm` on every axis (area averaging when shrinking, trilinear when
   growing; masks the same way, then >= 0.5);
3. per-volume intensity scaling with preprocess.normalize_image (1st/99th percentile -> [-1, 1]);
4. a centred crop or pad (with -1, the background value) to a fixed `shape`, each side a multiple of 4.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from shared.model.network import STRIDE
from shared.model.preprocess import normalize_image
from shared.model.tasks import MISSING

# The 2D model's three classes keep their indices; metastasis is what 3D data adds (BraTS-MET).
VOLUME_TYPES = ("meningioma", "glioma", "pituitary", "metastasis")
COLUMNS = ("volume_id", "image", "mask", "fold", "type")
AXES = ("S", "P", "L")  # nibabel axis codes of the (D, H, W) array
PAD_VALUE = -1.0
_NRRD_TO_RAS = {  # sign of the world x, y axes relative to RAS (NIfTI's world)
    "left-posterior-superior": (-1, -1), "lps": (-1, -1),
    "right-anterior-superior": (1, 1), "ras": (1, 1),
    "left-anterior-superior": (-1, 1), "las": (-1, 1),
}


@dataclass(frozen=True)
class VolumeEntry:
    """One row of the labels CSV, paths resolved."""
    volume_id: str
    image: Path
    mask: Path | None
    fold: int
    type: int  # index into VOLUME_TYPES, or MISSING


@dataclass(frozen=True)
class Volume:
    """A preprocessed volume: image (D, H, W) float32 in [-1, 1], mask (D, H, W) bool or None."""
    volume_id: str
    image: np.ndarray
    mask: np.ndarray | None
    spacing_mm: tuple[float, float, float]         # after resampling, (D, H, W) order
    source_spacing_mm: tuple[float, float, float]  # from the header, (D, H, W) order
    fold: int
    type: int


def read_labels(csv_path: Path) -> list[VolumeEntry]:
    """Parse and check the labels CSV (see the module docstring); files must exist."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"labels CSV: expected a file at {csv_path}, found nothing")
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{csv_path}: expected the header {','.join(COLUMNS)}, found {reader.fieldnames}")
        entries = [_entry(row, csv_path, line) for line, row in enumerate(reader, start=2)]
    ids = [e.volume_id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{csv_path}: expected unique volume_id values, found duplicates {duplicates}")
    if not entries:
        raise ValueError(f"{csv_path}: expected at least one volume row, found none")
    return entries


def _entry(row: dict, csv_path: Path, line: int) -> VolumeEntry:
    where = f"{csv_path}, line {line}"
    volume_id, type_name = (row["volume_id"] or "").strip(), (row["type"] or "").strip()
    if not volume_id:
        raise ValueError(f"{where}: expected a volume_id, found an empty cell")
    try:
        fold = int(row["fold"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected an integer fold, found {row['fold']!r}") from None
    if type_name and type_name not in VOLUME_TYPES:
        raise ValueError(f"{where}: expected type in {VOLUME_TYPES} or empty, found {type_name!r}")
    paths = {}
    for column in ("image", "mask"):
        text = (row[column] or "").strip()
        if not text:
            if column == "image":
                raise ValueError(f"{where}: expected an image path, found an empty cell")
            paths[column] = None
            continue
        path = (csv_path.parent / text).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{where}: expected the {column} file {path}, found nothing")
        paths[column] = path
    return VolumeEntry(volume_id, paths["image"], paths["mask"], fold,
                       VOLUME_TYPES.index(type_name) if type_name else MISSING)


def read_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(3D array, 4x4 voxel-to-RAS affine in mm) from a NRRD or NIfTI file."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise FileNotFoundError(f"volume: expected a file at {path}, found nothing")
    try:
        if name.endswith((".nrrd", ".nhdr")):
            data, affine = _read_nrrd(path)
        elif name.endswith((".nii", ".nii.gz")):
            data, affine = _read_nifti(path)
        else:
            raise ValueError(f"{path}: expected .nrrd, .nhdr, .nii or .nii.gz, found {path.suffix!r}")
    except (ValueError, KeyError, OSError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: expected a readable NRRD/NIfTI header and data, found: {exc}") from exc
    # 4D files with one volume (X, Y, Z, 1) are common exports; anything else is not a single volume.
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume, found shape {data.shape}")
    return data, affine


def _read_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nrrd  # readers are imported on use: the 2D worker never needs them

    try:
        data, header = nrrd.read(str(path))
    except nrrd.NRRDError as exc:
        raise ValueError(str(exc)) from exc
    affine = np.eye(4)
    if "space directions" in header:
        space = str(header.get("space", "")).lower()
        if space not in _NRRD_TO_RAS:
            raise ValueError(f"space: expected one of {sorted(_NRRD_TO_RAS)}, found {space!r}")
        directions = np.asarray(header["space directions"], dtype=float)
        if directions.shape != (3, 3) or not np.isfinite(directions).all():
            raise ValueError(f"space directions: expected a 3x3 matrix, found {directions.tolist()}")
        sign = np.array([*_NRRD_TO_RAS[space], 1.0])
        affine[:3, :3] = directions.T * sign[:, None]  # columns = axis vectors; world LPS -> RAS
        affine[:3, 3] = np.asarray(header.get("space origin", np.zeros(3)), dtype=float) * sign
    elif "spacings" in header:
        affine[:3, :3] = np.diag(np.asarray(header["spacings"], dtype=float)[:3])
    else:
        raise ValueError("expected 'space directions' or 'spacings' in the header, found neither")
    return np.asarray(data), affine


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nibabel

    try:
        image = nibabel.load(str(path))
    except nibabel.filebasedimages.ImageFileError as exc:
        raise ValueError(str(exc)) from exc
    return np.asanyarray(image.dataobj), np.asarray(image.affine, dtype=float)


def reorient(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The array in AXES order (D, H, W) and its voxel spacing in mm in the same order."""
    from nibabel import orientations

    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    if not (zooms > 0).all():
        raise ValueError(f"affine: expected a non-zero voxel size on every axis, found {zooms.tolist()}")
    current = orientations.io_orientation(affine)
    transform = orientations.ornt_transform(current, orientations.axcodes2ornt(AXES))
    spacing = np.empty(3)
    for axis, (target, _) in enumerate(transform):
        spacing[int(target)] = zooms[axis]
    return orientations.apply_orientation(data, transform), tuple(float(s) for s in spacing)


def resample(array: np.ndarray, spacing: tuple[float, ...], target_mm: float) -> tuple[np.ndarray, tuple]:
    """Float array to about `target_mm` per voxel: area averaging on shrinking axes (no aliasing),
    then trilinear on growing ones. Returns the array and its exact new spacing."""
    old = np.array(array.shape)
    new = np.maximum(1, np.round(old * np.array(spacing) / target_mm)).astype(int)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    shrunk = tuple(int(s) for s in np.minimum(old, new))
    if shrunk != tuple(old):
        tensor = F.interpolate(tensor, size=shrunk, mode="area")
    if shrunk != tuple(new):
        tensor = F.interpolate(tensor, size=tuple(int(s) for s in new), mode="trilinear", align_corners=False)
    exact = tuple(float(s) for s in old * np.array(spacing) / new)
    return tensor[0, 0].numpy(), exact


def resample_mask(mask: np.ndarray, spacing: tuple[float, ...], target_mm: float) -> np.ndarray:
    """Boolean mask on the resampled grid: a voxel is tumour when at least half of it is."""
    coverage, _ = resample(mask.astype(np.float32), spacing, target_mm)
    binary = coverage >= 0.5
    if mask.any() and not binary.any():
        # A lesion thinner than half a coarse voxel would vanish; keep its best-covered voxel(s).
        binary = coverage >= coverage.max()
    return binary


def fit_shape(array: np.ndarray, shape: tuple[int, int, int], fill: float) -> np.ndarray:
    """Centred crop and/or pad to `shape`."""
    out = np.full(shape, fill, dtype=array.dtype)
    src, dst = [], []
    for size, want in zip(array.shape, shape):
        lo_src, lo_dst = max(0, (size - want) // 2), max(0, (want - size) // 2)
        length = min(size, want)
        src.append(slice(lo_src, lo_src + length))
        dst.append(slice(lo_dst, lo_dst + length))
    out[tuple(dst)] = array[tuple(src)]
    return out


def check_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or any(s <= 0 or s % STRIDE for s in shape):
        raise ValueError(f"shape: expected three positive multiples of {STRIDE} (D,H,W), found {shape}")
    return shape


def load_volume(entry: VolumeEntry, spacing_mm: float, shape: tuple[int, int, int]) -> Volume:
    """Read, reorient, resample, normalise and crop/pad one volume (and its mask)."""
    shape = check_shape(shape)
    if spacing_mm <= 0:
        raise ValueError(f"spacing: expected a positive number of mm, found {spacing_mm}")
    data, affine = read_volume(entry.image)
    oriented, source_spacing = reorient(data, affine)
    resampled, spacing = resample(oriented, source_spacing, spacing_mm)
    image = fit_shape(normalize_image(resampled), shape, PAD_VALUE)
    mask = None
    if entry.mask is not None:
        mask_data, mask_affine = read_volume(entry.mask)
        if mask_data.shape != data.shape or not np.allclose(mask_affine, affine, atol=1e-3):
            raise ValueError(f"{entry.volume_id}: expected the mask {entry.mask} on the image's grid "
                             f"{data.shape} (affine {affine.round(3).tolist()}), found {mask_data.shape} "
                             f"(affine {mask_affine.round(3).tolist()})")
        binary, _ = reorient(np.asarray(mask_data) > 0, affine)
        mask = fit_shape(resample_mask(binary, source_spacing, spacing_mm), shape, False)
    return Volume(entry.volume_id, image, mask, spacing, source_spacing, entry.fold, entry.type)


def load_volumes(csv_path: Path, spacing_mm: float, shape: tuple[int, int, int]) -> list[Volume]:
    return [load_volume(entry, spacing_mm, shape) for entry in read_labels(csv_path)]
