"""How a tumour looks to a viewer (the `Tumor` schema of docs/gateway.md), and why a result matched."""

from __future__ import annotations

from typing import Any

from shared.vectorstore.base import PointRecord

LOCATION_LABELS = ("hemisphere", "anterior_posterior", "superior_inferior")


def tumor_view(point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": point_id,
        "study_instance_uid": payload["study_instance_uid"],
        "series_instance_uid": payload["series_instance_uid"],
        "tumor_index": payload["tumor_index"],
        "labels": {
            "type": payload["tumor_type"],
            "type_probabilities": payload["type_probabilities"],
            **{key: payload.get(key, "unknown") for key in LOCATION_LABELS},
            "size_mm3": payload["size_mm3"],
        },
        "centroid_mm": payload["centroid_mm"],
        "box_voxels": payload["box_voxels"],
        "slices": payload.get("slices", 1),
        "thumbnail_url": f"/api/v1/tumors/{point_id}/thumbnail.png",
    }


def point_view(point: PointRecord) -> dict[str, Any]:
    return tumor_view(point.id, point.payload)


def why_matched(query: dict[str, Any] | None, result: dict[str, Any]) -> dict[str, Any]:
    """Which predicted labels agree (unknown on either side counts as neither), how the sizes compare
    (smaller / larger, 1 = same size) and how far apart the centroids are in patient millimetres."""
    if query is None:  # a region search has no labels of its own yet
        return {"agreeing_labels": [], "differing_labels": [], "size_ratio": None, "centroid_distance_mm": None}
    agreeing, differing = [], []
    pairs = [("type", query["tumor_type"], result["tumor_type"])] + [
        (key, query.get(key, "unknown"), result.get(key, "unknown")) for key in LOCATION_LABELS]
    for key, mine, theirs in pairs:
        if "unknown" in (mine, theirs):
            continue
        (agreeing if mine == theirs else differing).append(key)
    sizes = sorted((float(query["size_mm3"]), float(result["size_mm3"])))
    ratio = round(sizes[0] / sizes[1], 3) if sizes[1] > 0 else None
    distance = sum((a - b) ** 2 for a, b in zip(query["centroid_mm"], result["centroid_mm"])) ** 0.5
    return {"agreeing_labels": agreeing, "differing_labels": differing, "size_ratio": ratio,
            "centroid_distance_mm": round(distance, 1)}
