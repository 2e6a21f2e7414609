"""Study folders under a TUMORSEARCH_HOME as the listener leaves them, made of small synthetic MR headers
(no pixels): for tests of what reads the archive back (`tumorsearch reindex`)."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from shared.contracts.storage import StudyLayout


def store_instance(layout: StudyLayout, study_uid: str, folder_uid: str | None = None) -> Path:
    """One MR header stored where the listener stores it; `folder_uid` puts it in another study's folder."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID, ds.file_meta.MediaStorageSOPClassUID = ExplicitVRLittleEndian, MRImageStorage
    ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID = MRImageStorage, generate_uid(), study_uid
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID, ds.Modality = "SYN-0001", "MR"
    path = layout.instance_path(folder_uid or study_uid, ds.SOPInstanceUID)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def fill_archive(home: Path, studies: int, instances: int) -> None:
    """A synthetic archive to time `tumorsearch reindex`'s walk on (docs/deploy.md)."""
    from tqdm import tqdm

    layout = StudyLayout(home)
    for _ in tqdm(range(studies), desc="synthetic studies", unit="study"):
        study_uid = generate_uid()
        for _ in range(instances):
            store_instance(layout, study_uid)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="write a synthetic archive of MR headers under HOME/studies")
    parser.add_argument("home", type=Path)
    parser.add_argument("--studies", type=int, default=10000)
    parser.add_argument("--instances", type=int, default=3)
    args = parser.parse_args()
    fill_archive(args.home, args.studies, args.instances)
