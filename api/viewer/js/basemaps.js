// Basemaps. Default: none (the project's own districts, ring roads and river are drawn from its
// vector tiles, so the map works on an intranet with no internet). Options that need the internet:
// OpenStreetMap, Tianditu (key from settings, RENEWAL_TIANDITU_KEY; CGCS2000, no shift needed) and
// Gaode (GCJ-02: every output tile is assembled from the GCJ-02 tiles covering its shifted
// extent, see gcj02.js, so the raster lines up with our CGCS2000 data).
import maplibregl from './maplibre.js';
import { shiftedSources } from './gcj02.js';
import { t } from './i18n.js';

const GAODE = 'https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}';

let protocolAdded = false;

function gaodeUrl(z, x, y) {
  const s = 1 + ((x + y) % 4);
  return GAODE.replace('{s}', s).replace('{x}', x).replace('{y}', y).replace('{z}', z);
}

async function gaodeShiftedTile(params, abortController) {
  const m = /gcj02:\/\/gaode\/(\d+)\/(\d+)\/(\d+)/.exec(params.url);
  const [z, x, y] = m.slice(1).map(Number);
  const canvas = new OffscreenCanvas(256, 256);
  const ctx = canvas.getContext('2d');
  await Promise.all(shiftedSources(z, x, y).map(async (src) => {
    const n = 2 ** z;
    if (src.y < 0 || src.y >= n) return;
    const resp = await fetch(gaodeUrl(z, ((src.x % n) + n) % n, src.y), { signal: abortController.signal, mode: 'cors' });
    if (!resp.ok) return;
    const img = await createImageBitmap(await resp.blob());
    ctx.drawImage(img, src.dx, src.dy, src.w, src.h);
  }));
  const blob = await canvas.convertToBlob({ type: 'image/png' });
  return { data: await blob.arrayBuffer() };
}

export function basemapOptions(cfg) {
  const out = [
    { id: 'none', label: t('bm_none') },
    { id: 'osm', label: t('bm_osm') },
    { id: 'gaode', label: t('bm_gaode') },
  ];
  if (cfg.basemaps && cfg.basemaps.tianditu_key) out.splice(2, 0, { id: 'tianditu', label: t('bm_tianditu') });
  return out;
}

function sourcesFor(id, cfg) {
  if (id === 'osm') {
    return [{ tiles: ['https://tile.openstreetmap.org/{z}/{x}/{y}.png'], attribution: '© OpenStreetMap contributors' }];
  }
  if (id === 'tianditu') {
    const key = encodeURIComponent(cfg.basemaps.tianditu_key);
    const wmts = (layer) => [0, 1, 2, 3].map((s) => `https://t${s}.tianditu.gov.cn/${layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile`
      + `&VERSION=1.0.0&LAYER=${layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=${key}`);
    return [{ tiles: wmts('vec'), attribution: '© 天地图' }, { tiles: wmts('cva'), attribution: '' }];
  }
  if (id === 'gaode') {
    if (!protocolAdded) { maplibregl.addProtocol('gcj02', gaodeShiftedTile); protocolAdded = true; }
    return [{ tiles: ['gcj02://gaode/{z}/{x}/{y}'], attribution: '© 高德地图 (GCJ-02 → CGCS2000)' }];
  }
  return [];
}

// Replace the basemap: raster sources/layers named basemap-*, drawn below every data layer.
export function setBasemap(map, id, cfg) {
  const style = map.getStyle();
  for (const layer of style.layers.filter((l) => l.id.startsWith('basemap-'))) map.removeLayer(layer.id);
  for (const name of Object.keys(style.sources).filter((s) => s.startsWith('basemap-'))) map.removeSource(name);
  const before = map.getStyle().layers.find((l) => l.id !== 'background')?.id;
  sourcesFor(id, cfg).forEach((src, i) => {
    const name = `basemap-${id}-${i}`;
    map.addSource(name, { type: 'raster', tileSize: 256, maxzoom: 18, ...src });
    map.addLayer({ id: name, type: 'raster', source: name }, before);
  });
  const note = document.getElementById('basemap-note');
  if (note) note.textContent = id === 'none' ? '' : (id === 'gaode' ? `${t('bm_note_online')} ${t('bm_note_gaode')}` : t('bm_note_online'));
}
