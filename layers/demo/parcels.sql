-- Synthetic land parcels (演示数据, not official): a jittered grid tessellating the third-ring area.
--
-- Grid nodes (i, j) are moved by a deterministic md5 hash of (i, j) by up to ±jitter of a
-- cell; neighbouring cells compute their shared nodes from the same expression, so the
-- quads tessellate without gaps or overlaps. With |jitter| < 0.5 every corner stays in
-- its own quarter around the grid node, so each quad is a simple polygon and contains
-- the unjittered cell centre, which serves as its point on surface for the district join.
-- Parameters (bound by psycopg): x0 y0 dx dy nx ny grid road_k ring3 r2x0 r2y0 r2x1 r2y1
-- lu_codes lu_inner lu_outer (lower bounds for width_bucket) all_codes all_labels.
INSERT INTO renewal.land_parcels
  (code, name, district_code, status, land_use_code, land_use_label, far, building_density,
   owner_type, supply_year, geom, created_at)
WITH cell AS (
  SELECT i, j,
         %(x0)s::float8 + (i::float8 + 0.5::float8) * %(dx)s::float8 AS cx,
         %(y0)s::float8 + (j::float8 + 0.5::float8) * %(dy)s::float8 AS cy
  FROM generate_series(0, %(nx)s::int - 1) AS i
  CROSS JOIN generate_series(0, %(ny)s::int - 1) AS j
),
kept AS (
  SELECT c.*,
         (c.i %% %(road_k)s::int = 0 OR c.j %% %(road_k)s::int = 0) AS is_road,
         (c.cx BETWEEN %(r2x0)s::float8 AND %(r2x1)s::float8
          AND c.cy BETWEEN %(r2y0)s::float8 AND %(r2y1)s::float8) AS inner_zone,
         md5('a' || c.i || ',' || c.j) AS ha,
         md5('b' || c.i || ',' || c.j) AS hb
  FROM cell AS c
  WHERE ST_Intersects(%(ring3)s::geometry, ST_SetSRID(ST_MakePoint(c.cx, c.cy), 4490))
),
u AS MATERIALIZED (  -- computed once: inlined CTEs would recompute the hashes per use
  SELECT k.*,
         ('x' || substr(ha, 1, 7))::bit(28)::int::float8 / 268435456.0::float8 AS u1,
         ('x' || substr(ha, 8, 7))::bit(28)::int::float8 / 268435456.0::float8 AS u2,
         ('x' || substr(ha, 15, 7))::bit(28)::int::float8 / 268435456.0::float8 AS u3,
         ('x' || substr(ha, 22, 7))::bit(28)::int::float8 / 268435456.0::float8 AS u4,
         ('x' || substr(hb, 1, 7))::bit(28)::int::float8 / 268435456.0::float8 AS u5,
         ('x' || substr(hb, 8, 7))::bit(28)::int::float8 / 268435456.0::float8 AS u6,
         ('x' || substr(hb, 15, 7))::bit(28)::int::float8 / 268435456.0::float8 AS u7,
         ('x' || substr(hb, 22, 7))::bit(28)::int::float8 / 268435456.0::float8 AS u8
  FROM kept AS k
),
classified AS (
  SELECT u.*,
         CASE WHEN u.is_road THEN '1207'
              WHEN u.inner_zone THEN (%(lu_codes)s::text[])[width_bucket(u.u1, %(lu_inner)s::float8[])]
              ELSE (%(lu_codes)s::text[])[width_bucket(u.u1, %(lu_outer)s::float8[])] END AS lu_code,
         CASE WHEN u.is_road THEN 'existing'
              WHEN u.u2 < 0.040 * CASE WHEN u.inner_zone THEN 0.6 ELSE 1.0 END THEN 'built'
              WHEN u.u2 < 0.070 * CASE WHEN u.inner_zone THEN 0.6 ELSE 1.0 END THEN 'supplied'
              WHEN u.u2 < 0.100 * CASE WHEN u.inner_zone THEN 0.6 ELSE 1.0 END THEN 'reserved'
              ELSE 'existing' END AS status
  FROM u
),
attrs AS (
  SELECT c.*,
         CASE WHEN c.is_road THEN NULL
              WHEN c.status = 'built' THEN 2021 + floor(c.u3 * 3)::int
              WHEN c.status = 'supplied' THEN 2021 + floor(c.u3 * 5)::int
              WHEN c.status = 'reserved' THEN NULL
              WHEN c.u3 < 0.6 THEN 1990 + floor(c.u4 * 31)::int
          END AS supply_year
  FROM classified AS c
)
SELECT
  'ZD-' || lpad(a.j::text, 4, '0') || '-' || lpad(a.i::text, 4, '0') AS code,
  (%(all_labels)s::text[])[array_position(%(all_codes)s::text[], a.lu_code)] || '地块（演示）' AS name,
  d.code AS district_code,
  a.status,
  a.lu_code,
  (%(all_labels)s::text[])[array_position(%(all_codes)s::text[], a.lu_code)],
  CASE
    WHEN a.lu_code IN ('1207', '1401', '1402', '1403') THEN NULL
    WHEN a.lu_code = '0701' AND a.supply_year >= 2021 THEN
      CASE WHEN a.u5 < 0.06 THEN round((2.1 + a.u6 * 0.7)::numeric, 2)   -- the few above 2.0
           ELSE round((1.0 + a.u6 * 1.0)::numeric, 2) END
    WHEN a.lu_code = '0701' THEN round((1.2 + a.u6 * 2.3)::numeric, 2)
    WHEN a.lu_code IN ('0901', '0902') THEN round((1.5 + a.u6 * 2.5)::numeric, 2)
    WHEN a.lu_code IN ('1001', '1101') THEN round((0.5 + a.u6 * 1.0)::numeric, 2)
    ELSE round((0.8 + a.u6 * 1.7)::numeric, 2)
  END::float8 AS far,
  CASE
    WHEN a.lu_code = '1207' THEN NULL
    WHEN a.lu_code = '1401' THEN round((1 + a.u7 * 4)::numeric, 1)
    WHEN a.lu_code IN ('1402', '1403') THEN round((a.u7 * 2)::numeric, 1)
    WHEN a.lu_code = '0701' THEN round((18 + a.u7 * 17)::numeric, 1)
    WHEN a.lu_code IN ('0901', '0902', '1001', '1101') THEN round((30 + a.u7 * 25)::numeric, 1)
    ELSE round((20 + a.u7 * 20)::numeric, 1)
  END::float8 AS building_density,
  CASE WHEN NOT a.inner_zone AND NOT a.is_road AND a.u8 < 0.06 THEN 'collective' ELSE 'state' END,
  a.supply_year,
  ST_Multi(ST_SetSRID(ST_MakePolygon(ST_MakeLine(ARRAY[n.n00, n.n10, n.n11, n.n01, n.n00])), 4490)),
  %(created_at)s::timestamptz  -- the base survey: every parcel's history starts there
FROM attrs AS a
CROSS JOIN LATERAL (
  SELECT pg_temp.demo_node(%(grid)s::float8[], a.i, a.j) AS n00,
         pg_temp.demo_node(%(grid)s::float8[], a.i + 1, a.j) AS n10,
         pg_temp.demo_node(%(grid)s::float8[], a.i + 1, a.j + 1) AS n11,
         pg_temp.demo_node(%(grid)s::float8[], a.i, a.j + 1) AS n01
  OFFSET 0  -- keep the subquery: each node is computed once
) AS n
LEFT JOIN LATERAL (
  SELECT dd.code FROM renewal.districts AS dd
  WHERE ST_Intersects(dd.geom, ST_SetSRID(ST_MakePoint(a.cx, a.cy), 4490))
  ORDER BY dd.code LIMIT 1
) AS d ON true
ORDER BY a.j, a.i
