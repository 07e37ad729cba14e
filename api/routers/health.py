"""Liveness and the versions of what we run on."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import EngineDep
from gis.core.db import versions

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    postgresql: str
    postgis: str


@router.get("/health", response_model=Health, summary="Service and database health")
def health(engine: EngineDep) -> Health:
    return Health(status="ok", **versions(engine))
