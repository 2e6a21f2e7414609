"""Checked DICOM values for the synthetic series the writer makes: identifiers, texts, UIDs, clinical-trial
attributes and decimal strings. Each refusal says what was expected and what was found."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydicom.uid import RE_VALID_UID
from pydicom.valuerep import DSfloat

# Clinical Trial Subject (PS3.3 C.7.1.3) and Clinical Trial Study (C.7.2.3) attributes a caller may set:
# keyword -> (maximum length, attribute type). All are LO but the description (ST). Type 1: required and
# non-empty; type 1C: the subject ID or the reading ID; type 2: written empty when not given.
CLINICAL_TRIAL_ATTRIBUTES: dict[str, tuple[int, str]] = {
    "ClinicalTrialSponsorName": (64, "1"), "ClinicalTrialProtocolID": (64, "1"),
    "ClinicalTrialProtocolName": (64, "2"), "ClinicalTrialSiteID": (64, "2"), "ClinicalTrialSiteName": (64, "2"),
    "ClinicalTrialSubjectID": (64, "1C"), "ClinicalTrialSubjectReadingID": (64, "1C"),
    "ClinicalTrialTimePointID": (64, "2"), "ClinicalTrialTimePointDescription": (1024, "3"),
}


def check_series_values(description: str, series_number: int, contrast_agent: str | None) -> None:
    check_text(description, "series_description", 64, required=False)  # LO
    if isinstance(series_number, bool) or not isinstance(series_number, int) or not 0 <= series_number < 2**31:
        raise ValueError(f"series_number: expected an integer in [0, 2**31), found {series_number!r}")
    if contrast_agent is not None:
        check_text(contrast_agent, "contrast_agent", 64, required=True)  # LO


def clinical_trial_values(given: Mapping[str, str] | None) -> dict[str, str]:
    """Every type 1/2 attribute of the two modules (type 2 empty when not given), checked; {} for None."""
    if given is None:
        return {}
    unknown = sorted(set(given) - set(CLINICAL_TRIAL_ATTRIBUTES))
    if unknown:
        raise ValueError(f"clinical_trial: expected keywords among {sorted(CLINICAL_TRIAL_ATTRIBUTES)}, "
                         f"found {unknown}")
    values = {}
    for keyword, (max_length, kind) in CLINICAL_TRIAL_ATTRIBUTES.items():
        if keyword in given:
            check_text(given[keyword], f"clinical_trial[{keyword!r}]", max_length, required=kind == "1")
            values[keyword] = given[keyword]
        elif kind == "1":
            raise ValueError(f"clinical_trial: expected {keyword} (type 1), found it missing")
        elif kind == "2":
            values[keyword] = ""
    subject = (values.get(k, "").strip() for k in ("ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID"))
    if not any(subject):
        raise ValueError("clinical_trial: expected ClinicalTrialSubjectID or ClinicalTrialSubjectReadingID "
                         "(type 1C: one of them), found neither")
    return values

def ds_value(value: float) -> DSfloat:
    """A DS value of at most 16 characters, as short as it can be: header values such as 0.7812500000000001
    (float noise from NRRD/NIfTI text) become "0.78125", not pydicom's zero-padded "0.78125000000000".
    `+ 0.0` turns -0.0 into 0.0, so no "-0" is written."""
    number = float(value) + 0.0
    text, precision = repr(number), 16
    while len(text) > 16:  # 'g' drops trailing zeros; fewer significant digits until it fits
        text, precision = f"{number:.{precision}g}", precision - 1
    return DSfloat(text)


def check_uid(value: object, what: str) -> None:
    # The pattern directly, not UID(value).is_valid: building a UID from a bad value already warns.
    if not isinstance(value, str) or len(value) > 64 or not re.fullmatch(RE_VALID_UID, value):
        raise ValueError(f"{what}: expected a DICOM UID (digits and dots, at most 64 characters), found {value!r}")


def check_text(value: object, what: str, max_length: int, *, required: bool) -> None:
    """Printable ASCII without backslash (the value separator), so no character set needs declaring."""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{what}: expected a {'non-empty ' if required else ''}string, found {value!r}")
    if len(value) > max_length or any(not " " <= c <= "~" or c == "\\" for c in value):
        raise ValueError(f"{what}: expected at most {max_length} printable ASCII characters without '\\', "
                         f"found {value!r}")
