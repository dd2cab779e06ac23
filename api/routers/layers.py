"""``/layers``: the registry as JSON, with the feature count of each layer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from psycopg import sql

from api.access import ReadAccessDep
from api.auth import restricted_layer_ids
from api.deps import ReadPoolDep, RegistryDep, SettingsDep

ORDER = 2
router = APIRouter(tags=["layers"])


@router.get("/layers", summary="Every registered layer with its fields, lifecycle and feature count")
async def list_layers(pool: ReadPoolDep, registry: RegistryDep, access: ReadAccessDep,
                      settings: SettingsDep) -> dict[str, Any]:
    """The registry plus live counts, in one round trip (``count: null`` for a layer the caller may not read).

    ``anonymous_read`` is the policy in force (the registry's, with ``RENEWAL_RESTRICTED_LAYERS`` and
    ``RENEWAL_PUBLIC_LAYERS`` applied), not the registry file's value alone.
    """
    closed = restricted_layer_ids(registry, settings)
    counts_sql = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {}::text, count(*) FROM {}.{}").format(
            sql.Literal(layer.id), sql.Identifier(layer.schema_name), sql.Identifier(layer.table)
        )
        for layer in access.readable()
    )
    async with pool.connection() as conn:
        cur = await conn.execute(counts_sql)
        counts = {name: n for name, n in await cur.fetchall()}
    layers = []
    for layer in registry:
        entry = layer.model_dump(mode="json")
        entry["anonymous_read"] = layer.id not in closed
        entry["count"] = counts.get(layer.id, 0) if access.may_read(layer) else None
        layers.append(entry)
    return {"layers": layers, "count": len(layers)}
