"""Shapes of the server's JSON answers (openapi/openapi.json), as TypedDicts: plain dicts, typed."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict


class EncodeResponse(TypedDict):
    model: str
    sids: List[List[int]]


class RetrievedItem(TypedDict):
    id: str
    score: Optional[float]
    sid: List[int]
    match: str  # exact | hamming1 | beam | prefix


class RetrieveResponse(TypedDict):
    model: str
    expand: str
    items: List[RetrievedItem]
    querySids: List[List[int]]
    candidates: Dict[str, int]
    timingsMs: Dict[str, float]


class UpsertedItem(TypedDict):
    id: str
    sid: List[int]
    replaced: bool


class UpsertResponse(TypedDict):
    model: str
    seq: str
    items: List[UpsertedItem]


class DeleteResponse(TypedDict):
    deleted: int
    missing: List[str]


class ItemResponse(TypedDict):
    id: str
    sid: List[int]
    model: str


class NextCodes(TypedDict):
    codes: List[int]
    counts: List[int]


class SidsNextResponse(TypedDict):
    model: str
    levels: int
    next: List[NextCodes]


class Model(TypedDict):
    id: str
    version: int
    method: str
    inputDim: int
    levels: int
    codebookSizes: List[int]
    path: str
    sha256: str
    metrics: Dict[str, Any]
    status: str
    active: bool
    createdAt: str


class ModelsResponse(TypedDict):
    active: str
    models: List[Model]


class Job(TypedDict):
    id: str
    kind: str
    status: str  # queued | running | succeeded | failed | cancelled
    phase: Optional[str]
    model: Optional[str]
    fromModel: Optional[str]
    processed: int
    total: Optional[int]
    itemsPerSecond: Optional[float]
    etaSeconds: Optional[float]
    error: Optional[str]
    stability: Optional[Dict[str, int]]
    mappingFile: Optional[str]
    createdAt: str
    updatedAt: str


class Readiness(TypedDict):
    status: str
    model: Optional[str]
    provider: Optional[str]
    items: int
    vectors: int


__all__ = [
    "EncodeResponse", "RetrievedItem", "RetrieveResponse", "UpsertedItem", "UpsertResponse", "DeleteResponse",
    "ItemResponse", "NextCodes", "SidsNextResponse", "Model", "ModelsResponse", "Job", "Readiness",
]
