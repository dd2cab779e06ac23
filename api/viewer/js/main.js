// 城市更新一张图 — the map viewer (title, centre and zoom come from the city profile). Vanilla ES modules, no build step; MapLibre GL JS is
// the ES module from /vendor (node_modules, no CDN), imported through ./maplibre.js.
import { debounce, fill, getJSON, qs } from './api.js';
import { basemapOptions, setBasemap } from './basemaps.js';
import { applyI18n, label, lang, setLang, setTitles, t } from './i18n.js';
import maplibregl from './maplibre.js';
import {
  applyPaint, applyStates, buildStyle, clearStates, interactiveIds, setVisible, styleLayerIds, useServerStyle,
} from './layers.js';
import { popupHtml, statusLabel } from './popup.js';
import { renderProgress } from './progress.js';

const DAY = 86400000;
const BIG_LAYER = 20000; // above this many features, states are fetched for the visible extent only

const view = {
  visible: new Set(), hiddenStatuses: {}, stateMode: false, asOf: null, district: null,
  highlight: null, counts: {}, activeTarget: null, basemap: 'none',
};
let cfg; let map; let popup = null; let generation = 0; let pending = Promise.resolve();
const layerById = {};

function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}
const dateOf = (i) => new Date(Date.parse(cfg.start_date) + i * DAY).toISOString().slice(0, 10);
const indexOf = (d) => Math.round((Date.parse(d) - Date.parse(cfg.start_date)) / DAY);
const currentDate = () => view.asOf || cfg.today;
const districtName = (code) => cfg.districts.find((d) => d.code === code)?.name;
const lifecycleLayers = () => cfg.layers.filter((l) => l.lifecycle);

// ------------------------------------------------------------------ states (date slider, district)

function refreshStates() {
  const gen = ++generation;
  view.stateMode = view.asOf !== null || view.district !== null;
  document.body.classList.toggle('as-of', view.asOf !== null);
  const bounds = map.getBounds();
  const bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map((v) => v.toFixed(5)).join(',');
  const jobs = lifecycleLayers().map(async (layer) => {
    const on = view.visible.has(layer.id);
    const withStates = on && view.stateMode;
    const params = { layer: layer.id, as_of: view.asOf, district: view.district, states: withStates ? undefined : 'false' };
    if (withStates && layer.count > BIG_LAYER) params.bbox = bbox;
    if (!on) { clearStates(map, layer.id); applyPaint(map, layer, view); return; }
    const body = await getJSON(`/viewer/status-as-of${qs(params)}`);
    if (gen !== generation) return;
    if (withStates) applyStates(map, layer.id, body.states); else clearStates(map, layer.id);
    view.counts[layer.id] = body.counts;
    applyPaint(map, layer, view);
    renderCounts(layer);
  });
  pending = Promise.all(jobs).then(() => { if (gen === generation) reapplyHighlight(); })
    .catch((e) => console.warn('status refresh failed', e));
  return pending;
}

const refreshSoon = debounce(refreshStates, 200);

// ------------------------------------------------------------------ highlight (search, targets, clicks)

function setHighlight(layerId, ids) {
  if (view.highlight) {
    for (const id of view.highlight.ids) {
      map.removeFeatureState({ source: view.highlight.layer, sourceLayer: view.highlight.layer, id }, 'hl');
    }
  }
  view.highlight = layerId ? { layer: layerId, ids } : null;
  reapplyHighlight();
}

function reapplyHighlight() {
  if (!view.highlight) return;
  const { layer, ids } = view.highlight;
  for (const id of ids) map.setFeatureState({ source: layer, sourceLayer: layer, id }, { hl: true });
}

// ------------------------------------------------------------------ layer panel and legend

function toggleLayer(layer, on) {
  if (on) view.visible.add(layer.id); else view.visible.delete(layer.id);
  setVisible(map, layer, on);
  const box = document.getElementById(`toggle-${layer.id}`);
  if (box) box.checked = on;
  renderDownloads();
  if (layer.lifecycle) refreshStates();
}

function swatchClass(layer) {
  return layer.geometry_type.includes('Line') ? 'swatch line' : layer.geometry_type.includes('Point') ? 'swatch point' : 'swatch';
}

function renderCounts(layer) {
  const counts = view.counts[layer.id] || {};
  for (const s of layer.lifecycle.statuses) {
    const el = document.getElementById(`count-${layer.id}-${s.code}`);
    if (el) el.textContent = (counts[s.code] ?? 0).toLocaleString();
  }
  const none = document.getElementById(`count-${layer.id}-none`);
  if (none) {
    none.textContent = (counts.none ?? 0).toLocaleString();
    none.parentElement.hidden = !counts.none;
  }
}

function renderLayerPanel() {
  const root = document.getElementById('layer-groups');
  root.innerHTML = '';
  for (const group of cfg.groups) {
    const h = document.createElement('h3');
    h.textContent = label(group);
    root.appendChild(h);
    for (const id of group.layers) {
      const layer = layerById[id];
      const div = document.createElement('div');
      div.className = 'layer';
      div.dataset.layer = id;
      const color = layer.id === 'districts' ? layer.style.color : layer.style.color;
      div.innerHTML = `<label><input type="checkbox" id="toggle-${id}" ${view.visible.has(id) ? 'checked' : ''}>`
        + `<span class="${swatchClass(layer)}" style="background:${esc(color)}"></span>`
        + `<span>${esc(label(layer, 'title'))}</span>`
        + `<span class="zoom-note" title="${esc(t('zoom_in', { z: layer.min_zoom }))}">≥${layer.min_zoom}</span></label>`;
      if (layer.lifecycle) {
        const legend = document.createElement('div');
        legend.className = 'legend';
        const hidden = view.hiddenStatuses[id] || [];
        legend.innerHTML = layer.lifecycle.statuses.map((s) => `<label><input type="checkbox" id="status-${id}-${s.code}" `
          + `data-status="${esc(s.code)}" ${hidden.includes(s.code) ? '' : 'checked'}>`
          + `<span class="${swatchClass(layer)}" style="background:${esc(s.color)}"></span>${esc(label(s))}`
          + `<span class="count" id="count-${id}-${s.code}"></span></label>`).join('')
          + `<label hidden><span class="${swatchClass(layer)}" style="background:transparent"></span>${esc(t('not_listed'))}`
          + `<span class="count" id="count-${id}-none"></span></label>`;
        legend.querySelectorAll('input').forEach((box) => box.addEventListener('change', () => {
          const set = new Set(view.hiddenStatuses[id] || []);
          if (box.checked) set.delete(box.dataset.status); else set.add(box.dataset.status);
          view.hiddenStatuses[id] = [...set];
          applyPaint(map, layer, view);
        }));
        div.appendChild(legend);
      }
      div.querySelector(`#toggle-${id}`).addEventListener('change', (e) => toggleLayer(layer, e.target.checked));
      root.appendChild(div);
      if (layer.lifecycle) renderCounts(layer);
    }
  }
}

function renderDownloads() {
  const root = document.getElementById('downloads');
  if (!cfg.endpoints.items) { root.innerHTML = ''; return; }
  const filter = view.district ? { filter: `district_code='${view.district}'`, 'filter-lang': 'cql2-text' } : {};
  root.innerHTML = cfg.layers.filter((l) => view.visible.has(l.id)).map((l) => {
    const base = fill(cfg.endpoints.items, { collection_id: l.id });
    return `<div>${esc(label(l, 'title'))}` + cfg.downloads.map((d) => `<a href="${esc(base + qs({ f: d.f, ...filter }))}" `
      + `download data-format="${esc(d.f)}">${esc(d.label)}</a>`).join('') + '</div>';
  }).join('');
  const link = document.getElementById('link-progress-map');
  if (cfg.endpoints.progress_map) {
    link.hidden = false;
    link.href = cfg.endpoints.progress_map + qs({ as_of: currentDate(), target: view.activeTarget });
  } else link.hidden = true;
}

// ------------------------------------------------------------------ district, basemap, language

function renderSelects() {
  const sel = document.getElementById('district');
  sel.innerHTML = `<option value="">${esc(t('all_city'))}</option>`
    + cfg.districts.map((d) => `<option value="${esc(d.code)}">${esc(d.name)}</option>`).join('');
  sel.value = view.district || '';
  const bm = document.getElementById('basemap');
  bm.innerHTML = basemapOptions(cfg).map((o) => `<option value="${o.id}">${esc(o.label)}</option>`).join('');
  bm.value = view.basemap;
}

function setDistrict(code) {
  view.district = code || null;
  const d = cfg.districts.find((x) => x.code === code);
  map.setFilter('districts:selected', ['==', ['get', 'code'], code || '']);
  if (d) map.fitBounds([[d.bbox[0], d.bbox[1]], [d.bbox[2], d.bbox[3]]], { padding: 30, duration: 600 });
  else map.flyTo({ center: cfg.center, zoom: cfg.zoom, duration: 600 });
  renderDownloads();
  refreshStates();
  updateProgress();
}

function switchLang() {
  setLang(lang() === 'zh' ? 'en' : 'zh');
  document.getElementById('btn-lang').textContent = lang() === 'zh' ? 'EN' : '中文';
  applyI18n();
  renderSelects();
  renderLayerPanel();
  renderDownloads();
  updateProgress();
  if (popup && popup.isOpen() && popup._feature) showPopup(popup._feature.layer, popup._feature.id, popup.getLngLat());
}

// ------------------------------------------------------------------ date slider

function setDate(date) {
  view.asOf = date >= cfg.today ? null : date;
  const slider = document.getElementById('date-slider');
  slider.value = indexOf(currentDate());
  document.getElementById('date-input').value = currentDate();
  refreshStates();
  updateProgress();
  renderDownloads();
  if (popup && popup.isOpen() && popup._feature) showPopup(popup._feature.layer, popup._feature.id, popup.getLngLat());
}

let playing = null;
function togglePlay() {
  const btn = document.getElementById('btn-play');
  if (playing) { clearInterval(playing); playing = null; btn.textContent = '▶'; return; }
  if (!view.asOf) setDate(cfg.start_date);
  btn.textContent = '⏸';
  playing = setInterval(() => {
    const next = dateOf(indexOf(currentDate()) + 30);
    setDate(next);
    if (!view.asOf) togglePlay();
  }, 900);
}

// ------------------------------------------------------------------ progress

function updateProgress() {
  return renderProgress(cfg, { asOf: currentDate(), district: view.district, activeTarget: view.activeTarget,
    onTarget: highlightTarget });
}

async function highlightTarget(record) {
  view.activeTarget = record.target;
  document.querySelectorAll('.target').forEach((el) => el.classList.toggle('active', el.dataset.target === record.target));
  const body = await getJSON(`/viewer/target-features${qs({ target: record.target, as_of: currentDate(), district: view.district })}`);
  const layer = layerById[body.layer];
  if (!view.visible.has(layer.id)) toggleLayer(layer, true);
  setHighlight(layer.id, body.ids);
  if (body.bbox) map.fitBounds([[body.bbox[0], body.bbox[1]], [body.bbox[2], body.bbox[3]]], { padding: 40, duration: 600 });
  renderDownloads();
}

// ------------------------------------------------------------------ popup and click

async function showPopup(layer, id, lngLat) {
  if (popup) popup.remove();
  popup = new maplibregl.Popup({ maxWidth: '340px' }).setLngLat(lngLat).setHTML(`<p class="note">${esc(t('loading'))}</p>`).addTo(map);
  popup._feature = { layer, id };
  try {
    const html = await popupHtml(cfg, layer, id, districtName, view.asOf);
    if (popup && popup._feature && popup._feature.id === id) popup.setHTML(html);
  } catch (e) {
    popup.setHTML(`<p class="note">${esc(e.message)}</p>`);
  }
}

function drawn(feature, layer) {
  if (!layer.lifecycle) return true;
  const state = map.getFeatureState({ source: layer.id, sourceLayer: layer.id, id: feature.id });
  if (view.stateMode && !state.on) return false;
  const status = state.status ?? feature.properties.status;
  return status !== 'none' && !(view.hiddenStatuses[layer.id] || []).includes(status);
}

function onClick(e) {
  const ids = cfg.layers.filter((l) => view.visible.has(l.id)).flatMap(interactiveIds).filter((id) => map.getLayer(id));
  const hits = map.queryRenderedFeatures(e.point, { layers: ids })
    .map((f) => ({ f, layer: layerById[f.layer.source] })).filter(({ f, layer }) => drawn(f, layer));
  if (!hits.length) return;
  hits.sort((a, b) => (a.layer.kind === 'reference') - (b.layer.kind === 'reference'));
  const { f, layer } = hits[0];
  setHighlight(layer.id, [f.id]);
  showPopup(layer, f.id, e.lngLat);
}

// ------------------------------------------------------------------ search

async function runSearch(q) {
  const list = document.getElementById('search-results');
  if (!q.trim()) { list.hidden = true; return []; }
  const body = await getJSON(`/viewer/search${qs({ q, limit: 20 })}`);
  list.innerHTML = body.hits.length ? '' : `<li class="note">${esc(t('no_results'))}</li>`;
  body.hits.forEach((hit, i) => {
    const li = document.createElement('li');
    li.dataset.layer = hit.layer;
    li.dataset.id = hit.id;
    const layer = layerById[hit.layer];
    li.innerHTML = `${esc(hit.name)}<small>${esc(label(layer, 'title'))} · ${esc(hit.code)}`
      + `${hit.status ? ` · ${esc(statusLabel(layer, hit.status))}` : ''}</small>`;
    if (i === 0) li.classList.add('active');
    li.addEventListener('click', () => goToHit(hit));
    list.appendChild(li);
  });
  list.hidden = false;
  return body.hits;
}

function goToHit(hit) {
  document.getElementById('search-results').hidden = true;
  const layer = layerById[hit.layer];
  if (!view.visible.has(layer.id)) toggleLayer(layer, true);
  const [x0, y0, x1, y1] = hit.bbox;
  map.fitBounds([[x0, y0], [x1, y1]], { padding: 80, maxZoom: Math.max(15, layer.min_zoom + 1), duration: 600 });
  setHighlight(layer.id, [hit.id]);
  showPopup(layer, hit.id, [(x0 + x1) / 2, (y0 + y1) / 2]);
}

// ------------------------------------------------------------------ start

function setupPanels() {
  const narrow = window.innerWidth < 700;
  const left = document.getElementById('panel-layers');
  const right = document.getElementById('panel-progress');
  const sync = () => {
    document.body.classList.toggle('with-left', !left.classList.contains('closed'));
    document.body.classList.toggle('with-right', !right.classList.contains('closed'));
    if (map) map.resize();
  };
  if (narrow) { left.classList.add('closed'); right.classList.add('closed'); }
  document.getElementById('btn-layers').addEventListener('click', () => {
    left.classList.toggle('closed');
    if (narrow) right.classList.add('closed');
    sync();
  });
  document.getElementById('btn-progress').addEventListener('click', () => {
    right.classList.toggle('closed');
    if (narrow) left.classList.add('closed');
    sync();
  });
  sync();
}

async function start() {
  setLang(lang());
  cfg = await getJSON('/viewer/config');
  useServerStyle(await getJSON('/styles/renewal?f=mapbox')); // every colour comes from the registry's style
  for (const l of cfg.layers) { layerById[l.id] = l; if (l.visible) view.visible.add(l.id); }
  setTitles(cfg.title, cfg.title_en);
  applyI18n();
  document.getElementById('btn-lang').textContent = lang() === 'zh' ? 'EN' : '中文';
  setupPanels();
  renderSelects();
  const slider = document.getElementById('date-slider');
  slider.max = indexOf(cfg.today);
  slider.value = slider.max;
  const dateInput = document.getElementById('date-input');
  dateInput.min = cfg.start_date;
  dateInput.max = cfg.today;
  dateInput.value = cfg.today;

  map = new maplibregl.Map({
    container: 'map', style: buildStyle(cfg, view), center: cfg.center, zoom: cfg.zoom, maxZoom: 19,
    attributionControl: { compact: true, customAttribution: cfg.city && !cfg.city.demo ? '' : '演示数据 synthetic demo data' },
  });
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
  window.viewer = { map, cfg, view, setDate, setDistrict, runSearch, idle, renderedFeatures };
  await new Promise((resolve) => map.once('load', resolve));

  renderLayerPanel();
  renderDownloads();
  map.on('click', onClick);
  for (const layer of cfg.layers) {
    for (const id of interactiveIds(layer)) {
      map.on('mouseenter', id, () => { map.getCanvas().style.cursor = 'pointer'; });
      map.on('mouseleave', id, () => { map.getCanvas().style.cursor = ''; });
    }
  }
  map.on('moveend', () => {
    if (view.stateMode && lifecycleLayers().some((l) => view.visible.has(l.id) && l.count > BIG_LAYER)) refreshSoon();
  });
  slider.addEventListener('input', () => { dateInput.value = dateOf(Number(slider.value)); });
  slider.addEventListener('change', () => setDate(dateOf(Number(slider.value))));
  dateInput.addEventListener('change', () => { if (dateInput.value) setDate(dateInput.value); });
  document.getElementById('btn-today').addEventListener('click', () => setDate(cfg.today));
  document.getElementById('btn-play').addEventListener('click', togglePlay);
  document.getElementById('district').addEventListener('change', (e) => setDistrict(e.target.value));
  document.getElementById('basemap').addEventListener('change', (e) => { view.basemap = e.target.value; setBasemap(map, view.basemap, cfg); });
  document.getElementById('btn-lang').addEventListener('click', switchLang);
  const search = document.getElementById('search');
  let hits = [];
  const doSearch = debounce(async () => { hits = await runSearch(search.value); }, 250);
  search.addEventListener('input', doSearch);
  search.addEventListener('keydown', async (e) => {
    if (e.key === 'Enter') { hits = await runSearch(search.value); if (hits.length) goToHit(hits[0]); }
    if (e.key === 'Escape') document.getElementById('search-results').hidden = true;
  });
  await Promise.all([refreshStates(), updateProgress()]);
  document.body.dataset.ready = 'true';
}

// For tests and the console: resolves when the status requests are done and the map has drawn.
async function idle() {
  let seen;
  do { seen = generation; await pending; } while (seen !== generation);
  if (!map.loaded() || !map.areTilesLoaded()) await new Promise((resolve) => map.once('idle', resolve));
  return true;
}

// Features drawn for a layer in the current view (rendered and not hidden by status or date).
function renderedFeatures(layerId) {
  const layer = layerById[layerId];
  const ids = interactiveIds(layer).filter((id) => map.getLayer(id));
  const seen = new Map();
  for (const f of map.queryRenderedFeatures({ layers: ids })) if (drawn(f, layer)) seen.set(f.id, f.properties.name);
  return seen.size;
}

start().catch((e) => { console.error('viewer failed to start', e); document.body.dataset.ready = 'error'; });
export { styleLayerIds };
