"""The history rules: a feature's status as of a date, and what counts toward a plan target.

Every output that shows or counts a status on a date (progress, ledgers, folium maps, the
viewer's date slider and popup, the analysis functions, reports) composes the SQL built
here, so they cannot disagree. The builders return :mod:`psycopg.sql` fragments; every
value travels as a bound parameter added to the caller's :class:`Binder`.

Status as of a date D
---------------------
1. The ``to_status`` of the feature's latest ``renewal.status_history`` row with
   ``effective_date <= D`` (rows of one day in the order they were recorded, so the last
   recorded wins). Its ``effective_date`` is the status's *since* date.
2. A feature with no such row is in the **first status of its layer's lifecycle** (the
   registry's order) if it already existed on D, i.e. the local date (Asia/Shanghai) of
   its ``created_at`` is on or before D; *since* is then that date, and ``recorded`` false.
3. Otherwise the feature is **absent** on D: it is not on any map, ledger, analysis or
   count of that date, and the viewer shows it as not listed (status null).

So a feature imported late without its earlier history is in its first status from the day
it was created until its first history row, and does not exist before.

Counts toward a target on D
---------------------------
A feature counts toward a :class:`~layers.plan.models.Target` when, as of D, its status is
*at or beyond* the target's status in the lifecycle, it passes the target's filters, and it
first reached such a status (the earliest date it held one, rule 2's date included) between
the target's ``start`` and ``min(deadline, D)``.

Forms
-----
:func:`status_join` looks one feature up at a time (a ``LATERAL`` join on the history
index): best for a page, a bounding box or one feature. :func:`history_summary` aggregates a
whole layer's history at once: best for counting every feature of a layer (progress).
:func:`status_intervals` gives each status with the dates it held, for series over many
dates. All three apply :func:`resolve_status` / the same intervals, and
``tests/layers/test_history_agreement.py`` proves the outputs agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from psycopg import sql

from layers.models import Layer
from layers.plan.models import Target
from layers.registry import Registry, get_registry

LOCAL_TIMEZONE = "Asia/Shanghai"
"""``created_at`` (a timestamptz) is turned into a date in this zone, the zone of ``effective_date``."""

HISTORY = sql.Identifier("renewal", "status_history")

STATUS_AS_OF_RULE = (
    "latest status_history row with effective_date <= as_of; without one, the layer's first lifecycle "
    "status if the feature was created (created_at, Asia/Shanghai date) by as_of; otherwise absent"
)
"""The rule in one sentence, for API documents (``/progress`` ``rules``)."""


class Binder(Protocol):
    """Something that binds a value under a name and returns the placeholder to splice in."""

    def add(self, name: str, value: Any) -> sql.Placeholder:
        """Bind ``value``; return its placeholder."""
        ...


class Params(dict[str, Any]):
    """Named bound parameters of one statement; a dict, so it is passed to ``execute`` as is."""

    def add(self, name: str, value: Any) -> sql.Placeholder:
        """Bind ``value`` under a unique name derived from ``name``; return its placeholder."""
        key, n = name, 1
        while key in self:
            n += 1
            key = f"{name}_{n}"
        self[key] = value
        return sql.Placeholder(key)


# --------------------------------------------------------------------------- small pieces


def lifecycle_of(layer: Layer) -> list[str]:
    """The layer's status codes in lifecycle order (``ValueError`` for a layer without one)."""
    if layer.lifecycle is None:
        raise ValueError(f"layer {layer.id} has no lifecycle, hence no status history")
    return list(layer.lifecycle.codes)


def first_status(layer: Layer) -> str:
    """The status of a feature that exists but has no history yet (rule 2)."""
    return lifecycle_of(layer)[0]


def created_on(feature: str = "t") -> sql.Composed:
    """The local date a feature row was created: ``(<feature>.created_at AT TIME ZONE …)::date``."""
    return sql.SQL("({}.created_at AT TIME ZONE {})::date").format(
        sql.Identifier(feature), sql.Literal(LOCAL_TIMEZONE)
    )


def _date(as_of: dt.date | sql.Composable, params: Binder) -> sql.Composable:
    if isinstance(as_of, sql.Composable):
        return as_of
    return sql.SQL("{}::date").format(params.add("as_of", as_of))


def table_of(layer: Layer) -> sql.Identifier:
    """``renewal.<table>`` of a layer."""
    return sql.Identifier(layer.schema_name, layer.table)


# --------------------------------------------------------------------------- status as of a date


def resolve_status(
    recorded_status: sql.Composable, recorded_since: sql.Composable, layer: Layer,
    as_of: sql.Composable, params: Binder, *, feature: str = "t",
) -> sql.Composed:
    """``status, since, recorded`` select-list from the latest history row on or before D (rules 1–3).

    ``recorded_status``/``recorded_since`` are that row's ``to_status``/``effective_date``
    (NULL when there is none); ``feature`` is the alias of the layer table (for ``created_at``).
    """
    existed = sql.SQL("{} <= {}").format(created_on(feature), as_of)
    return sql.SQL(
        "coalesce({rs}, CASE WHEN {existed} THEN {first} END) AS status, "
        "CASE WHEN {rs} IS NOT NULL THEN {rd} WHEN {existed} THEN {created} END AS since, "
        "{rs} IS NOT NULL AS recorded"
    ).format(
        rs=recorded_status, rd=recorded_since, existed=existed, created=created_on(feature),
        first=sql.SQL("{}::text").format(params.add("first_status", first_status(layer))),
    )


def status_join(
    layer: Layer, as_of: dt.date | sql.Composable, params: Binder, *, feature: str = "t", alias: str = "s"
) -> sql.Composed:
    """Joins giving ``<alias>.status``, ``<alias>.since`` and ``<alias>.recorded`` for each ``<feature>`` row.

    ``status`` is NULL when the feature is absent on the date (rule 3); filter on
    ``<alias>.status IS NOT NULL`` to leave absent features out. One index look-up per feature.
    """
    day = _date(as_of, params)
    last = sql.Identifier(f"{alias}_last")
    return sql.SQL(
        """
        LEFT JOIN LATERAL (
          SELECT h.to_status, h.effective_date FROM {history} AS h
          WHERE h.layer = {layer} AND h.feature_id = {f}.id AND h.effective_date <= {day}
          ORDER BY h.effective_date DESC, h.id DESC LIMIT 1
        ) AS {last} ON true
        CROSS JOIN LATERAL (SELECT {resolved}) AS {alias}
        """
    ).format(
        history=HISTORY, layer=params.add("history_layer", layer.table), f=sql.Identifier(feature), day=day,
        last=last, alias=sql.Identifier(alias),
        resolved=resolve_status(
            sql.SQL("{}.to_status").format(last), sql.SQL("{}.effective_date").format(last), layer, day, params,
            feature=feature,
        ),
    )


def features_as_of(
    layer: Layer, as_of: dt.date | sql.Composable, params: Binder, *, include_absent: bool = False
) -> sql.Composed:
    """A parenthesised subquery: the layer's rows with ``status_as_of``, ``status_since``, ``status_recorded``.

    Features absent on the date are left out unless ``include_absent`` (then ``status_as_of`` is NULL).
    """
    where = sql.SQL("") if include_absent else sql.SQL("WHERE s.status IS NOT NULL")
    return sql.SQL(
        "(SELECT t.*, s.status AS status_as_of, s.since AS status_since, s.recorded AS status_recorded "
        "FROM {table} AS t {join} {where})"
    ).format(table=table_of(layer), join=status_join(layer, as_of, params), where=where)


def history_summary(
    layer: Layer, as_of: dt.date | sql.Composable, params: Binder, reached: list[str] | None = None
) -> sql.Composed:
    """``SELECT feature_id, status, since, first_on, reached_on`` over the recorded history up to D.

    One row per feature with a history row on or before D (a whole-layer aggregate; the
    no-history rule is applied by :func:`summary_join`). ``reached_on`` is the earliest date of
    a row whose status is in ``reached`` (NULL without ``reached``).
    """
    day = _date(as_of, params)
    reached_on = (
        sql.SQL("min(h.effective_date) FILTER (WHERE h.to_status = ANY({}))").format(params.add("reached", reached))
        if reached
        else sql.SQL("NULL::date")
    )
    return sql.SQL(
        """
        SELECT h.feature_id,
               (array_agg(h.to_status ORDER BY h.effective_date DESC, h.id DESC))[1] AS status,
               max(h.effective_date) AS since, min(h.effective_date) AS first_on, {reached_on} AS reached_on
        FROM {history} AS h
        WHERE h.layer = {layer} AND h.effective_date <= {day}
        GROUP BY h.feature_id
        """
    ).format(reached_on=reached_on, history=HISTORY, layer=params.add("history_layer", layer.table), day=day)


def status_intervals(
    layer: Layer, params: Binder, *, until: dt.date | sql.Composable | None = None, reached: list[str] | None = None
) -> sql.Composed:
    """Each status a feature held, from ``valid_from`` until ``valid_to`` (exclusive; NULL: still held).

    Columns: ``feature_id, status, valid_from, valid_to, recorded, reached_on``. The first
    interval of a feature created before its first history row is rule 2's (its first status
    from its creation date, ``recorded`` false). The status on D is the interval with
    ``valid_from <= D AND (valid_to IS NULL OR D < valid_to)``; none means absent.
    ``reached_on`` is the earliest ``valid_from`` so far of an interval whose status is in
    ``reached``. ``until`` drops rows after that date (they cannot matter before it).
    """
    cut_h: sql.Composable = sql.SQL("")
    cut_t: sql.Composable = sql.SQL("")
    if until is not None:
        day = _date(until, params)
        cut_h = sql.SQL("AND h.effective_date <= {}").format(day)
        cut_t = sql.SQL("AND {} <= {}").format(created_on("t"), day)
    layer_name = params.add("history_layer", layer.table)
    reached_on = (
        sql.SQL("min(x.valid_from) FILTER (WHERE x.status = ANY({})) OVER w").format(params.add("reached", reached))
        if reached
        else sql.SQL("NULL::date")
    )
    return sql.SQL(
        """
        SELECT x.feature_id, x.status, x.valid_from, lead(x.valid_from) OVER w AS valid_to, x.recorded,
               {reached_on} AS reached_on
        FROM (
          SELECT h.feature_id, h.to_status AS status, h.effective_date AS valid_from, h.id AS seq, true AS recorded
          FROM {history} AS h WHERE h.layer = {layer} {cut_h}
          UNION ALL
          SELECT t.id, {first}::text, {created}, 0::bigint, false
          FROM {table} AS t
          WHERE NOT EXISTS (SELECT 1 FROM {history} AS h0
                            WHERE h0.layer = {layer} AND h0.feature_id = t.id AND h0.effective_date <= {created})
            {cut_t}
        ) AS x
        WINDOW w AS (PARTITION BY x.feature_id ORDER BY x.valid_from, x.seq)
        """
    ).format(
        reached_on=reached_on, history=HISTORY, layer=layer_name, cut_h=cut_h, cut_t=cut_t,
        first=params.add("first_status", first_status(layer)), created=created_on("t"), table=table_of(layer),
    )


# --------------------------------------------------------------------------- counts toward a target


def reached_statuses(target: Target, registry: Registry | None = None) -> list[str]:
    """The statuses at or beyond the target's status in its layer's lifecycle."""
    lifecycle = (registry or get_registry()).get(target.layer).lifecycle
    assert lifecycle is not None  # the catalog is validated against the registry
    return lifecycle.at_or_beyond(target.status)


def target_filter_sql(target: Target, params: Binder, *, with_list: bool, feature: str = "t") -> sql.Composable:
    """The target's filters (and with ``with_list`` its list filters) on ``<feature>.<field>``, AND-joined."""
    parts: list[sql.Composable] = [sql.SQL("TRUE")]
    filters = [*target.filters, *(target.list_filters if with_list else [])]
    for f in filters:
        col = sql.SQL("{}.{}").format(sql.Identifier(feature), sql.Identifier(f.field))
        if f.op == "eq":
            parts.append(sql.SQL("{} = {}").format(col, params.add("f", f.value)))
        elif f.op == "in":
            values = list(f.value) if isinstance(f.value, list) else [f.value]
            parts.append(sql.SQL("{} = ANY({})").format(col, params.add("f", values)))
        else:
            assert isinstance(f.value, list)
            low, high = f.value
            parts.append(sql.SQL("{} BETWEEN {} AND {}").format(col, params.add("f", low), params.add("f", high)))
    return sql.SQL("(") + sql.SQL(" AND ").join(parts) + sql.SQL(")")


def counts_toward(
    target: Target, status: sql.Composable, reached_on: sql.Composable, as_of: dt.date | sql.Composable,
    params: Binder, *, registry: Registry | None = None, feature: str = "t",
) -> sql.Composed:
    """The condition "counts toward ``target`` as of D" for a feature with this status and ``reached_on``.

    A plain conjunction (NULL, i.e. not counting, when ``reached_on`` is NULL), so the planner can
    split it and filter each relation early; wrap it in ``coalesce(…, false)`` for a column.
    """
    day = _date(as_of, params)
    return sql.SQL(
        "({status} = ANY({reached}) AND {reached_on} >= {start} AND {reached_on} <= least({deadline}, {day}) "
        "AND {filters})"
    ).format(
        status=status, reached=params.add("reached", reached_statuses(target, registry)), reached_on=reached_on,
        start=params.add("start", target.start), deadline=sql.SQL("{}::date").format(params.add("deadline",
                                                                                                 target.deadline)),
        day=day, filters=target_filter_sql(target, params, with_list=False, feature=feature),
    )


def target_features(
    target: Target, as_of: dt.date | sql.Composable, params: Binder, *, registry: Registry | None = None,
    include_absent: bool = False,
) -> sql.Composed:
    """A parenthesised subquery: every feature of the target's layer present on D, with its standing.

    With ``include_absent`` features absent on D are kept too (``status_as_of`` NULL,
    ``counts`` false), for a list (清单) that names features before they exist. Columns: the
    layer's columns, ``status_as_of``, ``status_since``, ``status_recorded``, ``reached_on`` (first date
    at or beyond the target's status, NULL if not reached by D) and ``counts`` (counts toward
    the target on D). Aggregates the layer's history once (:func:`history_summary`), so it
    suits counting a whole layer.
    """
    registry = registry or get_registry()
    layer = registry.get(target.layer)
    day = _date(as_of, params)
    reached = reached_statuses(target, registry)
    first = first_status(layer)
    existed = sql.SQL("CASE WHEN {c} <= {day} THEN {c} END").format(c=created_on("t"), day=day)
    # rule 2's first status counts as reached only when every status does (the target is the first);
    # NULL whenever the feature is absent (no history row by D, not created by D)
    reached_on = (
        sql.SQL("least(h.first_on, {})").format(existed) if first in reached else sql.SQL("h.reached_on")
    )
    return sql.SQL(
        """
        (SELECT t.*, s.status AS status_as_of, s.since AS status_since, s.recorded AS status_recorded,
                {reached_on} AS reached_on, coalesce({counts}, false) AS counts
         FROM {table} AS t
         LEFT JOIN ({summary}) AS h ON h.feature_id = t.id
         CROSS JOIN LATERAL (SELECT {resolved}) AS s
         {where})
        """
    ).format(
        counts=counts_toward(target, sql.SQL("s.status"), reached_on, day, params, registry=registry),
        table=table_of(layer),
        summary=history_summary(layer, day, params, reached),
        resolved=resolve_status(sql.SQL("h.status"), sql.SQL("h.since"), layer, day, params),
        reached_on=reached_on,
        where=sql.SQL("") if include_absent else sql.SQL("WHERE s.status IS NOT NULL"),
    )
