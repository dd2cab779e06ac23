"""Keyset paging without a database: the boundary condition, the page statement and the page's cursors.

Run against PostGIS (every page, both directions, NULL sort keys) in ``tests/api/test_ogc.py``;
here the rules are pinned where a new paging strategy (e.g. ``offset``) will sit next to them.
"""

from __future__ import annotations

import pytest

from gis.errors import InvalidInputError
from layers.models import Layer
from layers.query import (
    Binder,
    Cursor,
    FeatureQuery,
    SortKey,
    build_where,
    decode_cursor,
    encode_cursor,
    keyset_condition,
    page_sql,
    read_page,
)
from layers.registry import get_registry


@pytest.fixture(scope="module")
def compounds() -> Layer:
    return get_registry().get("old_compounds")


def test_forward_boundary_puts_nulls_last(compounds: Layer) -> None:
    q = FeatureQuery(layer=compounds, sortby=(SortKey("households", True),), cursor=Cursor((500, 7)))
    b = Binder()
    text = keyset_condition(q, b).as_string(None)
    assert text == ('((("t"."households" < %(q0)s::bigint OR "t"."households" IS NULL)) OR '
                    '("t"."households" = %(q1)s::bigint AND ("t"."id" > %(q2)s::bigint OR "t"."id" IS NULL)))')
    assert b.params == {"q0": 500, "q1": 500, "q2": 7}


def test_backward_boundary_from_a_null_key(compounds: Layer) -> None:
    q = FeatureQuery(layer=compounds, sortby=(SortKey("households"),), cursor=Cursor((None, 7), backward=True))
    text = keyset_condition(q, Binder()).as_string(None)
    assert text == '(("t"."households" IS NOT NULL) OR ("t"."households" IS NULL AND "t"."id" < %(q0)s::bigint))'


def test_page_statement_uses_the_where_built_once(compounds: Layer) -> None:
    q = FeatureQuery(layer=compounds, bbox=(114.4, 38.0, 114.6, 38.1), limit=10, cursor=Cursor((7,), backward=True))
    where = build_where(q)
    b = Binder()
    text = page_sql(q, b, where=where, filter_first=True).as_string(None)
    # a bbox page collected first: the index's box test, sorted ids, the exact test row by row
    assert where.coarse is not None and where.exact is not None
    assert where.coarse.as_string(None) in text and where.exact.as_string(None) in text and "%(w0)s" in text
    assert where.cond.as_string(None) not in text
    assert 'ORDER BY "c"."page_key" DESC LIMIT %(q2)s::integer' in text.replace("c.page_key", '"c"."page_key"')
    assert b.params["q1"] == 10 and b.params["q2"] == 11 and set(where.with_params(b.params)) >= set(where.params)
    # without a bbox the whole condition is used as built
    q2 = FeatureQuery(layer=compounds, equals=(("status", "started"),), limit=10, cursor=Cursor((7,), backward=True))
    where2 = build_where(q2)
    text2 = page_sql(q2, Binder(), where=where2, filter_first=True).as_string(None)
    assert where2.coarse is None and where2.cond.as_string(None) in text2
    assert 'ORDER BY ("t"."id" + 0) DESC NULLS FIRST LIMIT %(q2)s::integer' in text2


def _row(keys: list[int], limit: int, backward: bool = False) -> tuple[str, int, str | None, str | None]:
    """What page_sql returns for rows with these ids (rn order: nearest the boundary first)."""
    shown = keys[:limit]
    first, last = (f"[{shown[0]}]", f"[{shown[-1]}]") if shown else (None, None)
    return "[]", len(keys), first, last


def test_cursors_of_first_middle_last_and_past_the_end_pages(compounds: Layer) -> None:
    q = FeatureQuery(layer=compounds, limit=2)
    first = read_page(q, _row([1, 2, 3], 2), None)
    assert first.number_returned == 2 and first.prev_cursor is None and first.next_cursor is not None
    nxt = decode_cursor(q, first.next_cursor)
    assert nxt == Cursor((2,), backward=False)
    middle = read_page(q.with_cursor(nxt), _row([3, 4, 5], 2), None)
    assert middle.next_cursor and middle.prev_cursor
    assert decode_cursor(q, middle.prev_cursor) == Cursor((3,), backward=True)
    last = read_page(q.with_cursor(nxt), _row([3], 2), 5)
    assert last.next_cursor is None and last.prev_cursor is not None and last.number_matched == 5
    past = read_page(q.with_cursor(Cursor((99,))), _row([], 2), None)
    assert past.number_returned == 0 and past.next_cursor is None and past.prev_cursor is None


def test_backward_page_reverses_its_boundary_keys(compounds: Layer) -> None:
    q = FeatureQuery(layer=compounds, limit=2, cursor=Cursor((5,), backward=True))
    # fetched in reverse: rn=1 is id 4 (nearest the boundary), then 3, and a third row (2) means more before
    page = read_page(q, _row([4, 3, 2], 2), None)
    assert decode_cursor(q, page.next_cursor or "") == Cursor((4,), backward=False)
    assert decode_cursor(q, page.prev_cursor or "") == Cursor((3,), backward=True)


def test_a_cursor_is_bound_to_its_sort_order(compounds: Layer) -> None:
    q = FeatureQuery(layer=compounds, sortby=(SortKey("name"),))
    token = encode_cursor(q, '["小区 1", 1]', backward=False)
    assert decode_cursor(q, token) == Cursor(("小区 1", 1))
    with pytest.raises(InvalidInputError):
        decode_cursor(FeatureQuery(layer=compounds), token)


def test_offset_page_statement_and_neighbours(compounds: Layer) -> None:
    q = FeatureQuery(layer=compounds, sortby=(SortKey("households", True),), limit=10).with_offset(20)
    b = Binder()
    text = page_sql(q, b).as_string(None)
    assert 'ORDER BY "t"."households" DESC NULLS LAST, "t"."id" ASC NULLS LAST LIMIT %(q1)s::integer OFFSET' in text
    assert b.params["q2"] == 20 and "keyset" not in text
    mid = read_page(q, _row(list(range(11)), 10), 95)
    assert (mid.next_offset, mid.prev_offset, mid.next_cursor, mid.prev_cursor) == (30, 10, None, None)
    last = read_page(q.with_offset(5), _row([1, 2], 10), 7)
    assert (last.next_offset, last.prev_offset) == (None, 0)
    past = read_page(q.with_offset(200), _row([], 10), 95)
    assert (past.next_offset, past.prev_offset) == (None, None)
