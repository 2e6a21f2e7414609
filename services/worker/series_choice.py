"""Which MR series of a study to process, and why (recorded in the study's status).

Brain tumour studies hold several MR series (T2, FLAIR, T1 before and after contrast, diffusion...).
The model was trained on post-contrast T1 slices, so with the rule `post_contrast_t1` the series with the
most evidence of being one is chosen: a contrast agent in the header, a description that says T1 and
post-contrast, and T1-like timing (short TR and TE). With the rule `all`, every MR series is processed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from services.worker.study_files import Series

SeriesRule = Literal["post_contrast_t1", "all"]

_T1 = re.compile(r"t1|mprage|spgr|bravo|vibe|flash|tfe", re.IGNORECASE)
_POST = re.compile(r"post|\+\s*c|c\s*\+|\bgd\b|gad|contrast|\bce\b|\+gd|enhanc", re.IGNORECASE)
_PRE = re.compile(r"\bpre\b|without|w/o|non[- ]?contrast", re.IGNORECASE)


@dataclass(frozen=True)
class Choice:
    series: Series
    reason: str


def choose_series(candidates: list[Series], rule: SeriesRule) -> list[Choice]:
    if not candidates:
        return []
    if rule == "all":
        return [Choice(s, "rule 'all': every MR series") for s in candidates]
    if len(candidates) == 1:
        return [Choice(candidates[0], "the only MR series")]
    scored = sorted(candidates, key=lambda s: (post_contrast_t1_score(s)[0], s.frames), reverse=True)
    best = scored[0]
    score, evidence = post_contrast_t1_score(best)
    why = ", ".join(evidence) if evidence else "no post-contrast T1 evidence in any series; the largest one"
    return [Choice(best, f"post-contrast T1 rule (score {score} of {len(candidates)} MR series): {why}")]


def post_contrast_t1_score(series: Series) -> tuple[int, list[str]]:
    """Points for each piece of evidence, and the evidence in words."""
    header, description = series.first, series.description
    score, evidence = 0, []
    if str(getattr(header, "ContrastBolusAgent", "") or "").strip():
        score, evidence = score + 3, evidence + ["contrast agent recorded"]
    if _POST.search(description) and not _PRE.search(description):
        score, evidence = score + 2, evidence + ["description says post-contrast"]
    if _PRE.search(description):
        score, evidence = score - 3, evidence + ["description says pre-contrast"]
    if _T1.search(description):
        score, evidence = score + 1, evidence + ["description says T1"]
    if _t1_timing(header):
        score, evidence = score + 1, evidence + ["T1-weighted timing (TR < 1000 ms, TE < 30 ms)"]
    return score, evidence


def _t1_timing(header) -> bool:  # noqa: ANN001 - a pydicom Dataset
    try:
        return float(header.RepetitionTime) < 1000 and float(header.EchoTime) < 30
    except (AttributeError, TypeError, ValueError):
        return False
