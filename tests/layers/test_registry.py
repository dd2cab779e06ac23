"""The registry and the migrated schema must agree, so they cannot drift."""

import re

import psycopg
import pytest

from layers.models import COMMON_COLUMNS, SQL_TYPES, Layer
from layers.registry import get_registry

REGISTRY = list(get_registry())


def test_registry_has_the_foundation_layers() -> None:
    ids = set(get_registry().ids)
    assert {
        "districts", "ring_zones", "ring_roads", "hutuo_river", "hutuo_belt_zones", "land_parcels",
        "urban_villages", "old_compounds", "vacated_land", "planned_roads", "parking_sites",
    } <= ids


def test_unknown_layer_raises_not_found() -> None:
    from layers.errors import UnknownLayerError

    with pytest.raises(UnknownLayerError):
        get_registry().get("no_such_layer")


def test_lifecycle_helpers() -> None:
    lc = get_registry().get("urban_villages").lifecycle
    assert lc is not None
    assert lc.at_or_beyond("construction") == ["construction", "completed"]
    assert lc.allowed_next("started") == ["planned", "acquisition"]
    labels = lc.by_label()
    assert labels["征收"] == "acquisition" and labels["回迁/竣工"] == "completed" and labels["签约"] == "acquisition"


def _columns(conn: psycopg.Connection, table: str) -> dict[str, tuple[str, str, str]]:
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable, is_generated FROM information_schema.columns "
        "WHERE table_schema = 'renewal' AND table_name = %s",
        (table,),
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _check_values(conn: psycopg.Connection, table: str, column: str) -> list[str] | None:
    rows = conn.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'renewal' AND t.relname = %s "
        "AND c.contype = 'c'",
        (table,),
    ).fetchall()
    for (definition,) in rows:
        if re.search(rf"\(\(?{column}\b.*= ANY", definition):
            return re.findall(r"'([^']*)'::text", definition)
    return None


@pytest.mark.parametrize("layer", REGISTRY, ids=lambda layer: layer.id)
def test_registry_matches_migrated_schema(layer: Layer, conn: psycopg.Connection) -> None:
    cols = _columns(conn, layer.table)
    assert cols, f"table renewal.{layer.table} missing"
    expected = set(COMMON_COLUMNS) | {f.name for f in layer.fields} | ({"status"} if layer.has_status else set())
    assert set(cols) == expected
    for field in layer.fields:
        data_type, nullable, generated = cols[field.name]
        assert data_type == SQL_TYPES[field.type], field.name
        assert (generated == "ALWAYS") == field.generated, field.name
        if field.required:
            assert nullable == "NO", field.name
        if field.choices:
            values = _check_values(conn, layer.table, field.name)
            if values is not None:
                assert sorted(values) == sorted(c.code for c in field.choices), field.name
    if layer.lifecycle:
        assert _check_values(conn, layer.table, "status") == layer.lifecycle.codes
    gtype, srid = conn.execute(
        "SELECT type, srid FROM geometry_columns WHERE f_table_schema = 'renewal' AND f_table_name = %s "
        "AND f_geometry_column = 'geom'",
        (layer.table,),
    ).fetchone()
    assert gtype == layer.geometry_type.upper() and srid == 4490
    gist = conn.execute(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'renewal' AND tablename = %s "
        "AND indexdef ILIKE '%%USING gist (geom)%%'",
        (layer.table,),
    ).fetchone()[0]
    assert gist == 1
    if layer.measure_field:
        assert cols[layer.measure_field][2] == "ALWAYS"


def test_every_table_in_schema_is_registered_or_known(conn: psycopg.Connection) -> None:
    tables = {r[0] for r in conn.execute(
        "SELECT f_table_name FROM geometry_columns WHERE f_table_schema = 'renewal'"
    ).fetchall()}
    # attachments keep the EXIF position of a photo (evidence, issue 16), not a layer
    assert tables - {"attachments"} == {layer.table for layer in REGISTRY}
