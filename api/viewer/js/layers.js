// MapLibre sources and layers built from the registry (/viewer/config): one vector source per
// registry layer (the multi-layer tile endpoint with ?layers=<id>), so hidden layers cost no tile
// requests and feature-state is keyed by (source = layer id, id = MVT feature id = table id).
//
// Status drawing: colours, widths and opacities come from the registry's MapLibre style served at
// /styles/renewal?f=mapbox (layers/styles.py), the same style QGIS and other clients get; no colour is
// written here. With the date slider away from today or a
// district chosen, the viewer is in "state mode": every feature gets feature-state {on, status}
// from /viewer/status-as-of and features without `on` are transparent. Per-status filters and
// features not yet on the ledger ('none') are hidden through opacity (filters cannot read state).

const HL = '#ffd400'; // the selection highlight (an interaction colour, not a layer's)

let SERVER = {}; // style layer id -> style layer of the server's style
let SOURCES = {}; // layer id -> the server style's source (its zoom range)
let BACKGROUND = null;

// Keep the server's style (call once, before buildStyle).
export function useServerStyle(style) {
  SERVER = Object.fromEntries(style.layers.map((l) => [l.id, l]));
  SOURCES = style.sources || {};
  BACKGROUND = SERVER.background || null;
}

function serverPaint(id) {
  return (SERVER[id] && SERVER[id].paint) || {};
}

export function statusExpr() {
  return ['coalesce', ['feature-state', 'status'], ['get', 'status']];
}

// The server's colour, with the status read from feature-state in state mode.
function byState(expr) {
  return Array.isArray(expr) && expr[0] === 'match' ? ['match', statusExpr(), ...expr.slice(2)] : expr;
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

// The server style's overview fill (cells at city scale, layers/overview.py), if the layer has one.
function overviewLayer(layer) {
  return SERVER[`${layer.id}:overview`] || null;
}

// The server style's name labels (symbol layer, local fonts, no glyph server), if the layer has them.
function labelLayer(layer) {
  return SERVER[`${layer.id}:label`] || null;
}

export function styleLayerIds(layer) {
  const g = layer.geometry_type;
  const overview = overviewLayer(layer) ? [`${layer.id}:overview`] : [];
  const label = labelLayer(layer) ? [`${layer.id}:label`] : [];
  if (g.includes('Polygon')) return [...overview, `${layer.id}:fill`, `${layer.id}:line`, `${layer.id}:hl`, ...label];
  if (g.includes('Line')) return [`${layer.id}:line`, `${layer.id}:hl`, ...label];
  return [`${layer.id}:circle`, ...label];
}

export function interactiveIds(layer) {
  return styleLayerIds(layer).filter((id) => !id.endsWith(':hl') && !id.endsWith(':overview') && !id.endsWith(':label'));
}

// A label fades with its feature: hidden in state mode, by a status filter or when not yet listed.
function labelPaint(layer, view) {
  const label = labelLayer(layer);
  return label ? { [`${layer.id}:label`]: { ...label.paint, 'text-opacity': opacityExpr(layer, 1, view) } } : {};
}

export function paintFor(layer, view) {
  return { ...shapePaint(layer, view), ...labelPaint(layer, view) };
}

function shapePaint(layer, view) {
  const g = layer.geometry_type;
  const hl = ['boolean', ['feature-state', 'hl'], false];
  if (g.includes('Polygon')) {
    const fill = serverPaint(`${layer.id}:fill`);
    const line = serverPaint(`${layer.id}:line`);
    return {
      [`${layer.id}:fill`]: { 'fill-color': byState(fill['fill-color']),
        'fill-opacity': opacityExpr(layer, fill['fill-opacity'], view) },
      [`${layer.id}:line`]: { 'line-color': byState(line['line-color']), 'line-width': line['line-width'],
        'line-opacity': opacityExpr(layer, line['line-opacity'], view) },
      [`${layer.id}:hl`]: { 'line-color': HL, 'line-width': 4, 'line-opacity': ['case', hl, 1, 0] },
    };
  }
  if (g.includes('Line')) {
    const line = serverPaint(`${layer.id}:line`);
    return {
      [`${layer.id}:line`]: { 'line-color': byState(line['line-color']), 'line-width': line['line-width'],
        'line-opacity': opacityExpr(layer, line['line-opacity'], view) },
      [`${layer.id}:hl`]: { 'line-color': HL, 'line-width': line['line-width'] + 5, 'line-opacity': ['case', hl, 0.8, 0] },
    };
  }
  const c = serverPaint(`${layer.id}:circle`);
  return {
    [`${layer.id}:circle`]: {
      'circle-color': byState(c['circle-color']), 'circle-radius': ['case', hl, c['circle-radius'] + 4, c['circle-radius']],
      'circle-stroke-color': ['case', hl, HL, c['circle-stroke-color']], 'circle-stroke-width': ['case', hl, 3, 1],
      'circle-opacity': opacityExpr(layer, c['circle-opacity'], view),
      'circle-stroke-opacity': opacityExpr(layer, c['circle-stroke-opacity'], view),
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
  const layers = BACKGROUND ? [BACKGROUND] : [];
  // Draw polygons first, then lines, then points; within a kind, in registry order.
  const rank = (l) => (l.geometry_type.includes('Polygon') ? 0 : l.geometry_type.includes('Line') ? 1 : 2);
  const ordered = [...cfg.layers].sort((a, b) => rank(a) - rank(b));
  for (const layer of ordered) {
    const overview = overviewLayer(layer);
    sources[layer.id] = { type: 'vector', tiles: [tileUrl(cfg, layer)],
      minzoom: Math.max(0, overview ? overview.minzoom : layer.min_zoom),
      // The deepest tiles the server's style asks for (layers/styles.py SOURCE_MAX_ZOOM); deeper zooms overzoom.
      maxzoom: (SOURCES[layer.id] || {}).maxzoom ?? Math.max(layer.min_zoom, layer.max_zoom) };
    const visibility = view.visible.has(layer.id) ? 'visible' : 'none';
    if (overview) layers.push({ ...overview, layout: { visibility } });  // as the server draws it
    const paints = paintFor(layer, view);
    for (const id of styleLayerIds(layer)) {
      if (id.endsWith(':overview') || id.endsWith(':label')) continue;
      layers.push({ id, type: typeOf(id), source: layer.id, 'source-layer': layer.id, minzoom: layer.min_zoom,
        layout: { visibility: view.visible.has(layer.id) ? 'visible' : 'none' }, paint: paints[id] });
    }
  }
  // The chosen district's outline, above the shapes.
  layers.push({ id: 'districts:selected', type: 'line', source: 'districts', 'source-layer': 'districts',
    filter: ['==', ['get', 'code'], ''], paint: { 'line-color': '#1f5fa8', 'line-width': 4 } });
  // Names above every shape, as the server's style puts them (its layout: text, fonts, placement).
  for (const layer of ordered) {
    const label = labelLayer(layer);
    if (label) {
      layers.push({ ...label, layout: { ...label.layout, visibility: view.visible.has(layer.id) ? 'visible' : 'none' },
        paint: labelPaint(layer, view)[label.id] });
    }
  }
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

// The MVT layers of a source holding a layer's features: its shapes and, for polygons, its label points.
function sourceLayers(layerId) {
  const label = SERVER[`${layerId}:label`];
  const points = label && label['source-layer'] !== layerId ? [label['source-layer']] : [];
  return [layerId, ...points];
}

// Feature states for one layer: {id: status|null} from /viewer/status-as-of.
export function applyStates(map, layerId, states) {
  for (const sourceLayer of sourceLayers(layerId)) {
    map.removeFeatureState({ source: layerId, sourceLayer });
    for (const [id, status] of Object.entries(states)) {
      map.setFeatureState({ source: layerId, sourceLayer, id: Number(id) }, { on: true, status: status ?? 'none' });
    }
  }
}

export function clearStates(map, layerId) {
  for (const sourceLayer of sourceLayers(layerId)) map.removeFeatureState({ source: layerId, sourceLayer });
}
