// Feature popup: attributes from the OGC API Features item, area (mu) or length (m), and the
// status timeline from /viewer/history. With a date on the slider the popup shows the status on
// that date (the rule that colours the map, layers/history.py) and the current one, labelled so.
import { fill, getJSON } from './api.js';
import { label, lang, t } from './i18n.js';

function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

export function statusLabel(layer, code) {
  if (code === null || code === undefined || code === 'none') return t('not_listed');
  const s = layer.lifecycle?.statuses.find((x) => x.code === code);
  return s ? label(s) : code;
}

function statusColor(layer, code) {
  return layer.lifecycle?.statuses.find((x) => x.code === code)?.color || '#888';
}

function formatValue(field, value) {
  if (value === null || value === undefined || value === '') return '—';
  if (field.choices && field.choices[value]) return field.choices[value][lang() === 'en' ? 1 : 0];
  if (typeof value === 'number') return value.toLocaleString(lang() === 'en' ? 'en' : 'zh-CN', { maximumFractionDigits: 2 });
  return value;
}

function measureText(history) {
  if (history.measure_value === null || history.measure_value === undefined) return null;
  const v = Number(history.measure_value).toLocaleString(lang() === 'en' ? 'en' : 'zh-CN', { maximumFractionDigits: 2 });
  if (history.measure === 'area_mu') return [t('area'), `${v} ${t('mu')}`];
  if (history.measure === 'length_m') return [t('length'), `${v} ${t('m')}`];
  return null;
}

export async function popupHtml(cfg, layer, id, districtName, asOf = null) {
  const when = asOf && layer.lifecycle ? `?as_of=${encodeURIComponent(asOf)}` : '';
  const [history, item] = await Promise.all([
    getJSON(`/viewer/history/${encodeURIComponent(layer.id)}/${encodeURIComponent(id)}${when}`),
    cfg.endpoints.item
      ? getJSON(fill(cfg.endpoints.item, { collection_id: layer.id, feature_id: id })).catch(() => null)
      : Promise.resolve(null),
  ]);
  const props = (item && item.properties) || {};
  const rows = [];
  for (const field of layer.fields) {
    if (['code', 'name', 'area_mu', 'length_m'].includes(field.name)) continue;
    let value = field.name in props ? props[field.name] : history[field.name];
    if (field.name === 'district_code' && value) value = `${districtName(value) || ''} ${value}`.trim();
    if (value === undefined) continue;
    rows.push([label(field), formatValue(field, value)]);
  }
  const measure = measureText(history);
  if (measure) rows.push(measure);
  if (layer.lifecycle && when) {
    rows.push([t('status_on', { date: history.as_of }), statusLabel(layer, history.status_as_of)]);
    rows.push([t('current'), statusLabel(layer, history.status)]);
  } else if (layer.lifecycle) rows.push([label(layer.lifecycle), statusLabel(layer, history.status)]);
  let html = `<div class="popup" data-layer="${esc(layer.id)}" data-id="${esc(id)}"`
    + ` data-status="${esc(when ? history.status_as_of ?? 'none' : history.status)}">`
    + `<div class="popup-name">${esc(history.name)}</div>`
    + `<div class="popup-layer">${esc(label(layer, 'title'))} · ${esc(history.code)}</div><table>`
    + rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('') + '</table>';
  if (layer.lifecycle) {
    html += `<div class="popup-layer" style="margin-top:6px">${esc(t('history'))}</div>`;
    if (!history.history.length) html += `<p class="note">${esc(t('no_history'))}</p>`;
    else {
      html += '<ul class="timeline">' + history.history.map((h) => `<li style="--dot:${statusColor(layer, h.to_status)}">`
        + `<span class="when">${esc(h.effective_date)}</span> ${esc(statusLabel(layer, h.to_status))}`
        + (h.source_doc ? `<br><span class="doc">${esc(t('source_doc'))}: ${esc(h.source_doc)}</span>` : '')
        + (h.note ? `<br><span class="doc">${esc(h.note)}</span>` : '') + '</li>').join('') + '</ul>';
    }
  }
  return `${html}</div>`;
}
