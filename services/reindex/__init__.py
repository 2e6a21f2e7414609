"""`tumorsearch reindex`: hand every stored study to the worker again, e.g. after a new checkpoint."""
