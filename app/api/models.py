"""GET /v1/models and /v1/models/{id}: the models Codex offers, and their effort aliases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.gateway import Gateway, authorized

router = APIRouter()


def model_object(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "codex"}


@router.get("/v1/models")
async def list_models(gateway: Gateway = Depends(authorized)) -> dict[str, Any]:
    catalog = gateway.catalog
    return {"object": "list", "data": [model_object(name, catalog.created) for name in catalog.ids()]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, gateway: Gateway = Depends(authorized)) -> dict[str, Any]:
    gateway.catalog.resolve(model_id)
    return model_object(" ".join(model_id.split()), gateway.catalog.created)
