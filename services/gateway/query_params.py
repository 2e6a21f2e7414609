"""The parameters of a similar-tumour query, validated (bounded `k`, bounded filter lists, finite numbers)
and turned into a vector-store filter. Bad values become 400 problems naming the parameter."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

from shared.vectorstore.base import Condition, Filter, Match, MatchAny, Range

TumorType = Literal["meningioma", "glioma", "pituitary", "metastasis"]
Hemisphere = Literal["left", "right", "midline", "unknown"]
MAX_VALUES = 10


class SimilarQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, ge=1)
    type: list[TumorType] = Field([], max_length=MAX_VALUES)
    hemisphere: list[Hemisphere] = Field([], max_length=MAX_VALUES)
    min_size_mm3: float | None = Field(None, ge=0)
    max_size_mm3: float | None = Field(None, ge=0)
    exclude_same_patient: bool = True
    fold: list[int] = Field([], max_length=MAX_VALUES)
    main_only: bool = Field(False, description="only each series' largest tumour (tumour 0)")

    @field_validator("min_size_mm3", "max_size_mm3")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "SimilarQuery":
        if self.min_size_mm3 is not None and self.max_size_mm3 is not None and self.min_size_mm3 > self.max_size_mm3:
            raise ValueError("min_size_mm3: expected at most max_size_mm3")
        return self

    def conditions(self) -> tuple[Condition, ...]:
        must: list[Condition] = []
        if self.type:
            must.append(MatchAny("tumor_type", tuple(self.type)))
        if self.hemisphere:
            must.append(MatchAny("hemisphere", tuple(self.hemisphere)))
        if self.min_size_mm3 is not None or self.max_size_mm3 is not None:
            must.append(Range("size_mm3", self.min_size_mm3, self.max_size_mm3))
        if self.fold:
            must.append(MatchAny("fold", tuple(self.fold)))
        if self.main_only:
            must.append(Match("tumor_index", 0))
        return tuple(must)

    def store_filter(self, patient_hash: str | None) -> Filter:
        must_not = (Match("patient_hash", patient_hash),) if self.exclude_same_patient and patient_hash else ()
        return Filter(must=self.conditions(), must_not=must_not)

    def described(self) -> dict[str, Any]:
        return self.model_dump(exclude={"k"})


def parse_similar(source: MultiDict | dict, max_k: int) -> SimilarQuery:
    """From query-string arguments (repeatable lists) or a JSON body."""
    if isinstance(source, MultiDict):
        data: dict[str, Any] = {}
        for key in source:
            values = source.getlist(key)
            data[key] = values if key in ("type", "hemisphere", "fold") else values[-1]
    else:
        data = dict(source)
    try:
        query = SimilarQuery.model_validate(data)
    except ValidationError as error:
        raise BadRequest(describe(error)) from None
    if query.k > max_k:
        raise BadRequest(f"k: expected at most {max_k}, found {query.k}")
    return query


def describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"
