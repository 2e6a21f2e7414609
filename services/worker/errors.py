"""Why a study fails: errors whose message is the reason recorded in the study's status (no identifiers).

A StudyError is a property of the data (a broken series, an unsupported object): retrying cannot help,
so the task records "failed" with the reason and finishes. Transient failures (broker, vector store)
are other exception types, retried with backoff (tasks.py).
"""


class StudyError(ValueError):
    """The study cannot be processed; str(error) is the reason reported."""


class SeriesError(StudyError):
    """A series does not form one consistent volume (gaps, mixed sizes or orientations, too large...)."""
