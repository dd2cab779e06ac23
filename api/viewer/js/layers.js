// MapLibre sources and layers built from the registry (/viewer/config): one vector source per
// registry layer (the multi-layer tile endpoint with ?layers=<id>), so hidden layers cost no tile
// requests and feature-state is keyed by (source = layer id, id = MVT feature id = table id).
//
// Status drawing: colour by status from the registry. With the date slider away from today or a
// district chosen, the viewer is in "state mode": every feature gets feature-state {on, status}
// from /viewer/status-as-of and features without `on` are transparent. Per-status filters and
// features not yet on the ledger ('none') are hidden through opacity (filters cannot read state).

const HL = '#ffd400';

export function statusExpr() {
  return ['coalesce', ['feature-state', 'status'], ['get', 'status']];
}

function colorExpr(layer) {
  if (!layer.lifecycle) return layer.style.color;
  const expr = ['match', statusExpr()];
  for (const s of layer.lifecycle.statuses) expr.push(s.code, s.color);
  expr.push(layer.style.color);
  return expr;
}

// Opacity: 0 when hidden by state mode, a status filter or 'not yet listed'; else `base`.
export function opacityExpr(layer, base, view) {
  if (!layer.lifecycle) return base;
  const hidden = [...(view.hiddenStatuses[layer.id] || []), 'none'];
  const cases = ['case'];
  if (view.stateMode) cases.push(['!=', ['feature-state', 'on'], true], 0);
  cases.push(['in', statusExpr(), ['literal', hidden]], 0);
  cases.push(base);
  return cases;
}

export function styleLayerIds(layer) {
  const g = layer.geometry_type;
  if (g.includes('Polygon')) return [`${layer.id}:fill`, `${layer.id}:line`, `${layer.id}:hl`];
  if (g.includes('Line')) return [`${layer.id}:line`, `${layer.id}:hl`];
  return [`${layer.id}:circle`];
}

export function interactiveIds(layer) {
  return styleLayerIds(layer).filter((id) => !id.endsWith(':hl'));
}

export function paintFor(layer, view) {
  const color = colorExpr(layer);
  const st = layer.style;
  const g = layer.geometry_type;
  const hl = ['boolean', ['feature-state', 'hl'], false];
  if (g.includes('Polygon')) {
    return {
      [`${layer.id}:fill`]: { 'fill-color': color, 'fill-opacity': opacityExpr(layer, st.fill_opacity, view) },
      [`${layer.id}:line`]: { 'line-color': layer.id === 'districts' ? st.color : color,
        'line-width': st.weight, 'line-opacity': opacityExpr(layer, 0.9, view) },
      [`${layer.id}:hl`]: { 'line-color': HL, 'line-width': 4, 'line-opacity': ['case', hl, 1, 0] },
    };
  }
  if (g.includes('Line')) {
    return {
      [`${layer.id}:line`]: { 'line-color': color, 'line-width': st.weight, 'line-opacity': opacityExpr(layer, 0.95, view) },
      [`${layer.id}:hl`]: { 'line-color': HL, 'line-width': st.weight + 5, 'line-opacity': ['case', hl, 0.8, 0] },
    };
  }
  return {
    [`${layer.id}:circle`]: {
      'circle-color': color, 'circle-radius': ['case', hl, st.radius + 4, st.radius],
      'circle-stroke-color': ['case', hl, HL, '#ffffff'], 'circle-stroke-width': ['case', hl, 3, 1],
      'circle-opacity': opacityExpr(layer, 0.9, view), 'circle-stroke-opacity': opacityExpr(layer, 0.9, view),
    },
  };
}

function typeOf(styleId) {
  return { fill: 'fill', line: 'line', hl: 'line', circle: 'circle' }[styleId.split(':')[1]];
}

export function tileUrl(cfg, layer) {
  const base = cfg.endpoints.tiles
    ? `${cfg.endpoints.tiles}?layers=${layer.id}`
    : cfg.endpoints.collection_tiles.replace('{collection_id}', layer.id);
  return new URL(base, location.origin).href.replace(/%7B/g, '{').replace(/%7D/g, '}');
}

export function buildStyle(cfg, view) {
  const sources = {};
  const layers = [{ id: 'background', type: 'background', paint: { 'background-color': '#eef0f2' } }];
  // Draw polygons first, then lines, then points; within a kind, in registry order.
  const rank = (l) => (l.geometry_type.includes('Polygon') ? 0 : l.geometry_type.includes('Line') ? 1 : 2);
  const ordered = [...cfg.layers].sort((a, b) => rank(a) - rank(b));
  for (const layer of ordered) {
    sources[layer.id] = { type: 'vector', tiles: [tileUrl(cfg, layer)], minzoom: Math.max(0, layer.min_zoom),
      maxzoom: Math.min(16, Math.max(layer.min_zoom, layer.max_zoom)) };
    const paints = paintFor(layer, view);
    for (const id of styleLayerIds(layer)) {
      layers.push({ id, type: typeOf(id), source: layer.id, 'source-layer': layer.id, minzoom: layer.min_zoom,
        layout: { visibility: view.visible.has(layer.id) ? 'visible' : 'none' }, paint: paints[id] });
    }
  }
  // The chosen district's outline, on top.
  layers.push({ id: 'districts:selected', type: 'line', source: 'districts', 'source-layer': 'districts',
    filter: ['==', ['get', 'code'], ''], paint: { 'line-color': '#1f5fa8', 'line-width': 4 } });
  return { version: 8, sources, layers };
}

export function applyPaint(map, layer, view) {
  const paints = paintFor(layer, view);
  for (const [id, paint] of Object.entries(paints)) {
    for (const [prop, value] of Object.entries(paint)) map.setPaintProperty(id, prop, value);
  }
}

export function setVisible(map, layer, on) {
  for (const id of styleLayerIds(layer)) map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
}

// Feature states for one layer: {id: status|null} from /viewer/status-as-of.
export function applyStates(map, layerId, states) {
  map.removeFeatureState({ source: layerId, sourceLayer: layerId });
  for (const [id, status] of Object.entries(states)) {
    map.setFeatureState({ source: layerId, sourceLayer: layerId, id: Number(id) }, { on: true, status: status ?? 'none' });
  }
}

export function clearStates(map, layerId) {
  map.removeFeatureState({ source: layerId, sourceLayer: layerId });
}
