"""`tumorsearch dicomize`: the figshare benchmark images and NIfTI/NRRD volumes as DICOM MR studies."""
