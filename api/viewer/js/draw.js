// 绘制与节点编辑: the small map of the report page. An editor draws a new point, line or polygon, or
// moves, inserts (drag a midpoint) and deletes (right-click) the vertices of the picked feature.
// Drawing is terra-draw with its MapLibre adapter, installed from npm (package-lock.json) and served by
// the app under /vendor/ like MapLibre itself (UMD globals terraDraw, terraDrawMaplibreGlAdapter): it
// works offline. Context: the district boundaries (the app's vector tiles) and the layer's features
// the editor may report on (grey). The geometry sent is GeoJSON in CRS84 (lon/lat), one part as a
// single geometry (the server promotes it to the layer's Multi* type), several parts as Multi*.
import maplibregl from './maplibre.js';
import { basemapOptions, setBasemap } from './basemaps.js';
import { tileUrl } from './layers.js';

const MODE = { Point: 'point', MultiPoint: 'point', LineString: 'linestring', MultiLineString: 'linestring',
  Polygon: 'polygon', MultiPolygon: 'polygon' };
const EMPTY = { type: 'FeatureCollection', features: [] };
const BLUE = '#1f5fa8';

// Keep the note under the map (it says why), drop the map and its tools.
function hideMap(container) {
  const box = document.getElementById(container).closest('#draw-box');
  box?.querySelectorAll('#draw-map, .draw-tools').forEach((el) => el.setAttribute('hidden', ''));
}

function parts(geom) {
  if (!geom) return [];
  if (geom.type.startsWith('Multi')) return geom.coordinates.map((c) => ({ type: geom.type.slice(5), coordinates: c }));
  return [geom];
}

function bounds(geoms) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === 'number') { b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]); b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]); } else c.forEach(walk);
  };
  geoms.filter(Boolean).forEach((g) => walk(g.coordinates));
  return Number.isFinite(b[0]) ? [[b[0], b[1]], [b[2], b[3]]] : null;
}

export class DrawMap {
  // cfg: /viewer/config; onChange(state) is called when the drawn geometry changes or is reset.
  constructor(container, cfg, onChange) {
    this.cfg = cfg;
    this.onChange = onChange;
    this.type = 'MultiPolygon';
    this.original = null;
    this.changed = false;
    this.quiet = false;
    const districts = cfg.layers.find((l) => l.id === 'districts');
    const sources = { context: { type: 'geojson', data: EMPTY } };
    const layers = [{ id: 'background', type: 'background', paint: { 'background-color': '#eef0f2' } }];
    if (districts) {
      sources.districts = { type: 'vector', tiles: [tileUrl(cfg, districts)], maxzoom: 14 };
      layers.push({ id: 'districts', type: 'line', source: 'districts', 'source-layer': 'districts',
        paint: { 'line-color': '#555', 'line-width': 1.5, 'line-dasharray': [3, 2] } });
    }
    layers.push(
      { id: 'context-fill', type: 'fill', source: 'context', filter: ['==', ['geometry-type'], 'Polygon'],
        paint: { 'fill-color': '#888', 'fill-opacity': 0.18 } },
      { id: 'context-line', type: 'line', source: 'context', filter: ['!=', ['geometry-type'], 'Point'],
        paint: { 'line-color': '#777', 'line-width': 1 } },
      { id: 'context-point', type: 'circle', source: 'context', filter: ['==', ['geometry-type'], 'Point'],
        paint: { 'circle-color': '#777', 'circle-radius': 3 } },
    );
    this.map = new maplibregl.Map({ container, style: { version: 8, sources, layers }, center: cfg.center,
      zoom: cfg.zoom, maxZoom: 19, attributionControl: false });
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    // the style (no tiles yet) is enough for terra-draw's sources and layers; 'load' would wait for tiles
    this.ready = new Promise((resolve) => this.map.once('style.load', () => {
      try { this.start(); } catch (e) { this.failed = String(e); hideMap(container); }  // the form works without
      resolve();
    }));
  }

  start() {
    const { TerraDraw, TerraDrawPointMode, TerraDrawLineStringMode, TerraDrawPolygonMode, TerraDrawSelectMode } = window.terraDraw;
    const { TerraDrawMapLibreGLAdapter } = window.terraDrawMaplibreGlAdapter;
    const vertices = { draggable: true, midpoints: true, deletable: true };
    this.draw = new TerraDraw({
      adapter: new TerraDrawMapLibreGLAdapter({ map: this.map }),
      modes: [
        new TerraDrawPointMode({ styles: { pointColor: BLUE, pointWidth: 7 } }),
        new TerraDrawLineStringMode({ styles: { lineStringColor: BLUE, lineStringWidth: 3 } }),
        new TerraDrawPolygonMode({ styles: { fillColor: BLUE, fillOpacity: 0.3, outlineColor: BLUE, outlineWidth: 2 } }),
        new TerraDrawSelectMode({
          flags: {
            point: { feature: { draggable: true } },
            linestring: { feature: { draggable: false, coordinates: vertices } },
            polygon: { feature: { draggable: false, coordinates: vertices } },
          },
        }),
      ],
    });
    this.draw.start();
    this.draw.on('change', (_ids, type) => {
      if (this.quiet || type === 'styling') return;
      this.changed = true;
      this.onChange(this.state());
    });
    this.draw.on('finish', () => { this.changed = true; this.onChange(this.state()); });
    this.map.getContainer().dataset.ready = 'true';
  }

  // The basemap choices of the viewer (none: offline), for a <select>.
  basemaps() { return basemapOptions(this.cfg); }

  setBasemap(id) { setBasemap(this.map, id, this.cfg); }

  // The layer's features the editor may report on, drawn grey for orientation.
  async setContext(geometryType, features) {
    await this.ready;
    if (!this.draw) return;
    this.type = geometryType;
    this.context = features;
    this.map.getSource('context').setData({ type: 'FeatureCollection', features: features.filter((f) => f.geometry) });
  }

  // Start over with a feature's geometry (vertex editing) or none (a new feature: drawing).
  async edit(geometry) {
    await this.ready;
    if (!this.draw) { this.onChange(this.state('nomap')); return; }
    this.quiet = true;
    try {
      this.draw.setMode('static');
    } catch { /* no static mode registered: fine */ }
    this.draw.clear();
    this.original = geometry || null;
    this.changed = false;
    const mode = MODE[this.type];
    let note = null;
    if (geometry) {
      const list = parts(geometry);
      if (list.some((p) => p.type === 'Polygon' && p.coordinates.length > 1)) {
        note = 'holes';  // terra-draw edits outer rings only: leave a polygon with holes alone
      } else {
        const results = this.draw.addFeatures(list.map((g) => ({ type: 'Feature', geometry: g, properties: { mode } })));
        if (results.some((r) => !r.valid)) note = 'invalid';
      }
      const b = bounds([geometry]);
      if (b) this.map.fitBounds(b, { padding: 40, maxZoom: 18, duration: 0 });
      this.draw.setMode('select');
    } else {
      const b = bounds((this.context || []).map((f) => f.geometry));
      if (b) this.map.fitBounds(b, { padding: 20, maxZoom: 17, duration: 0 });
      this.draw.setMode(mode);
    }
    this.quiet = false;
    this.onChange(this.state(note));
  }

  // Draw (new parts) or edit vertices.
  setMode(which) {
    if (!this.draw) return;
    this.draw.setMode(which === 'draw' ? MODE[this.type] : 'select');
    this.onChange(this.state());
  }

  // Remove every drawn part (then draw anew).
  clear() {
    if (!this.draw) return;
    this.draw.clear();
    this.changed = true;
    this.draw.setMode(MODE[this.type]);
    this.onChange(this.state());
  }

  // Back to the feature's geometry as it was.
  reset() { return this.edit(this.original); }

  // The drawn geometry (GeoJSON, CRS84), or null when nothing is drawn.
  geometry() {
    if (!this.draw) return null;
    const mode = MODE[this.type];
    const done = this.draw.getSnapshot().filter((f) => f.properties.mode === mode && !f.properties.currentlyDrawing);
    if (!done.length) return null;
    if (done.length === 1) return done[0].geometry;
    return { type: `Multi${done[0].geometry.type}`, coordinates: done.map((f) => f.geometry.coordinates) };
  }

  state(note = null) {
    if (this.failed) return { changed: false, parts: 0, mode: null, isNew: false, note: 'nomap' };
    return { changed: this.changed, parts: this.draw ? this.geometry() ? parts(this.geometry()).length : 0 : 0,
      mode: this.draw ? this.draw.getMode() : null, isNew: !this.original, note };
  }
}

// Without WebGL (or without the libraries) the page still reports status and attribute changes:
// the map box is hidden and nothing is drawn.
class NoDrawMap {
  constructor(reason) { this.reason = reason; this.changed = false; }

  basemaps() { return []; }

  setBasemap() {}

  async setContext() {}

  async edit() {}

  setMode() {}

  clear() {}

  async reset() {}

  geometry() { return null; }

  state() { return { changed: false, parts: 0, mode: null, isNew: false, note: 'nomap' }; }
}

// The drawing map, or a stand-in that draws nothing when the map cannot start here.
export function createDrawMap(container, cfg, onChange) {
  try {
    return new DrawMap(container, cfg, onChange);
  } catch (e) {
    hideMap(container);
    return new NoDrawMap(String(e));
  }
}
