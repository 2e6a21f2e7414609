"""The OpenAPI 3 description of /api/v1, served at /api/v1/openapi.json and checked against the running
API by schemathesis (tests/integration/test_gateway_schema.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

UID = {"type": "string", "pattern": r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$", "maxLength": 64}
LABEL = {"type": "string"}
PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _problems(*codes: int) -> dict:
    return {str(c): {"description": "problem", "content": {"application/problem+json": {"schema": PROBLEM}}}
            for c in codes}


TUMOR = {
    "type": "object",
    "required": ["id", "study_instance_uid", "series_instance_uid", "tumor_index", "labels", "centroid_mm",
                 "box_voxels", "thumbnail_url"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "study_instance_uid": UID, "series_instance_uid": UID,
        "tumor_index": {"type": "integer", "minimum": 0},
        "labels": {"type": "object", "required": ["type", "type_probabilities", "hemisphere", "size_mm3"],
                   "properties": {"type": LABEL, "type_probabilities": {"type": "object"}, "hemisphere": LABEL,
                                  "anterior_posterior": LABEL, "superior_inferior": LABEL,
                                  "size_mm3": {"type": "number", "minimum": 0}}},
        "centroid_mm": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
        "box_voxels": {"type": "array", "items": {"type": "integer"}, "minItems": 6, "maxItems": 6},
        "slices": {"type": "integer", "minimum": 1}, "thumbnail_url": {"type": "string"},
    },
}
RESULTS = {
    "type": "object", "required": ["k", "filters", "query_expansion", "results", "query"],
    "properties": {
        "k": {"type": "integer"}, "filters": {"type": "object"}, "query": {"type": "object"},
        "query_expansion": {"type": "integer", "minimum": 0,
                            "description": "nearest tumours added to the query before the final ranking (0: the "
                                           "tumour's own vector); similarity is the cosine to that vector"},
        "results": {"type": "array", "items": {"type": "object", "required": ["similarity", "tumor", "why"],
                                               "properties": {"similarity": {"type": "number"},
                                                              "tumor": {"$ref": "#/components/schemas/Tumor"},
                                                              "why": {"type": "object"}}}},
    },
}
FILTER_PARAMETERS = [
    {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}},
    {"name": "type", "in": "query", "explode": True,
     "schema": {"type": "array", "maxItems": 10,
                "items": {"enum": ["meningioma", "glioma", "pituitary", "metastasis"]}}},
    {"name": "hemisphere", "in": "query", "explode": True,
     "schema": {"type": "array", "maxItems": 10, "items": {"enum": ["left", "right", "midline", "unknown"]}}},
    {"name": "min_size_mm3", "in": "query", "schema": {"type": "number", "minimum": 0}},
    {"name": "max_size_mm3", "in": "query", "schema": {"type": "number", "minimum": 0}},
    {"name": "exclude_same_patient", "in": "query", "schema": {"type": "boolean", "default": True}},
    {"name": "fold", "in": "query", "explode": True,
     "schema": {"type": "array", "maxItems": 10, "items": {"type": "integer"}}},
    {"name": "main_only", "in": "query", "schema": {"type": "boolean", "default": False}},
]
TUMOR_ID = {"name": "tumor_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def document(max_k: int) -> dict[str, Any]:
    parameters = [dict(p) for p in FILTER_PARAMETERS]
    parameters[0] = {**parameters[0], "schema": {**parameters[0]["schema"], "maximum": max_k}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "TumorSearch gateway", "version": "1.0.0",
                 "description": "Similar brain tumours from the hospital's own archive (docs/gateway.md)."},
        "components": {
            "schemas": {"Tumor": TUMOR, "Problem": {"type": "object", "required": ["title", "status", "detail"],
                                                     "properties": {"type": {"type": "string"},
                                                                    "title": {"type": "string"},
                                                                    "status": {"type": "integer"},
                                                                    "detail": {"type": "string"}}}},
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "paths": _paths(parameters),
    }


def _paths(parameters: list[dict]) -> dict[str, Any]:
    study_uid = {"name": "study_uid", "in": "path", "required": True, "schema": UID}
    return {
        "/api/v1/studies/{study_uid}": {"get": {
            "summary": "A study's state and tumours", "parameters": [study_uid],
            "responses": {"200": {"description": "the study", **_json({"type": "object",
                                                                       "required": ["state", "tumors"]})},
                          **_problems(400, 401, 404, 429)}}},
        "/api/v1/tumors/{tumor_id}": {"get": {
            "summary": "One tumour", "parameters": [TUMOR_ID],
            "responses": {"200": {"description": "the tumour", **_json({"$ref": "#/components/schemas/Tumor"})},
                          **_problems(400, 401, 404, 429)}}},
        "/api/v1/tumors/{tumor_id}/thumbnail.png": {"get": {
            "summary": "The tumour's slice with its outline", "parameters": [TUMOR_ID],
            "responses": {"200": {"description": "PNG", "content": {"image/png": {}}},
                          **_problems(400, 401, 404, 429)}}},
        "/api/v1/tumors/{tumor_id}/similar": {"get": {
            "summary": "The most similar tumours", "parameters": [TUMOR_ID, *parameters],
            "responses": {"200": {"description": "results, most similar first", **_json(RESULTS)},
                          **_problems(400, 401, 404, 429)}}},
        "/api/v1/search": {"post": {
            "summary": "Similar tumours for a box in a received series",
            "requestBody": {"required": True, **_json({
                "type": "object", "required": ["study_instance_uid", "series_instance_uid", "box"],
                "properties": {"study_instance_uid": UID, "series_instance_uid": UID,
                               "box": {"oneOf": [
                                   {"type": "object", "required": ["voxels"], "additionalProperties": False,
                                    "properties": {"voxels": {"type": "array", "items": {"type": "integer"},
                                                              "minItems": 6, "maxItems": 6}}},
                                   {"type": "object", "required": ["patient_mm"], "additionalProperties": False,
                                    "properties": {"patient_mm": {"type": "array", "items": {"type": "number"},
                                                                  "minItems": 6, "maxItems": 6}}}]},
                               "k": {"type": "integer", "minimum": 1}}})},
            "responses": {"200": {"description": "results", **_json(RESULTS)},
                          **_problems(400, 401, 413, 415, 422, 429, 504)}}},
    }


openapi = Blueprint("openapi", __name__)


@openapi.get("/api/v1/openapi.json")
def openapi_json():
    from flask import current_app

    return jsonify(document(current_app.extensions["tumorsearch.deps"].section.max_k))
