"""Settings of `tumorsearch dicomize`: where the real MRI data is (only read when --figshare is not given)."""

from shared.config.data import DataSettings


class DicomizeSettings(DataSettings):
    """Nothing of its own: the data folder (shared/config/data.py)."""
