"""Pixel arrays (benchmark slices, NIfTI/NRRD volumes) written as valid, synthetic DICOM MR studies."""
