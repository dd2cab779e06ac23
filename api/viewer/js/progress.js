// Progress panel: the plan's spatial targets as of the slider date (bars, expected mark, on-track/
// behind badge) from the progress API, the quarterly district ranking, and a click on a target
// highlights the features it counts (/viewer/target-features).
import { getJSON, qs } from './api.js';
import { lang, t } from './i18n.js';

const COLORS = { met: '#2ca02c', on_track: '#2ca02c', at_risk: '#ff7f0e', behind: '#d62728', missed: '#d62728' };

function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function firstArray(body, keys) {
  if (Array.isArray(body)) return body;
  for (const k of keys) if (Array.isArray(body?.[k])) return body[k];
  return [];
}

function num(v) {
  return Number(v ?? 0).toLocaleString(lang() === 'en' ? 'en' : 'zh-CN', { maximumFractionDigits: 1 });
}

export function quarterOf(date) {
  const [y, m] = date.split('-').map(Number);
  return `${y}Q${Math.floor((m - 1) / 3) + 1}`;
}

let controller = null;

// "Report" buttons: the quarterly supervision report (督导通报) for the ranked quarter, and for the
// slider date (as_of), as Word or PDF, from /reports/quarterly next to the ranking endpoint.
function reportLinks(cfg, quarter, asOf) {
  const base = cfg.endpoints.ranking.replace(/\/progress\/ranking.*$/, '/reports/quarterly');
  const zh = lang() !== 'en';
  const link = (params, label) => `<a class="report-link" href="${esc(base + qs(params))}" download>${esc(label)}</a>`;
  return `<p class="note report-links">${esc(zh ? '督导通报' : 'Report')}: `
    + link({ quarter, format: 'docx' }, `${quarter} Word`) + ' · ' + link({ quarter, format: 'pdf' }, `${quarter} PDF`)
    + ' · ' + link({ as_of: asOf, format: 'docx' }, `${zh ? '截至' : 'as of'} ${asOf} Word`)
    + ' · ' + link({ as_of: asOf, format: 'pdf' }, 'PDF') + '</p>';
}

export async function renderProgress(cfg, { asOf, district, onTarget, activeTarget }) {
  const list = document.getElementById('progress-list');
  const ranking = document.getElementById('ranking');
  document.getElementById('progress-date').textContent = `${t('as_of')} ${asOf}`;
  if (!cfg.endpoints.progress) {
    list.innerHTML = `<p class="note">${esc(t('no_progress'))}</p>`;
    ranking.innerHTML = '';
    return [];
  }
  if (controller) controller.abort();
  controller = new AbortController();
  const { signal } = controller;
  let records = [];
  try {
    const body = await getJSON(cfg.endpoints.progress + qs({ as_of: asOf, district }), { signal });
    records = firstArray(body, ['targets', 'records', 'items', 'progress']).filter((r) => r.layer);
  } catch (e) {
    if (e.name === 'AbortError') return [];
    list.innerHTML = `<p class="note">${esc(t('no_progress'))}: ${esc(e.message)}</p>`;
    return [];
  }
  list.innerHTML = '';
  for (const r of records) {
    const pct = Math.max(0, Math.min(100, Number(r.percent ?? 0)));
    const exp = Math.max(0, Math.min(100, Number(r.expected_percent ?? 0)));
    const status = r.status || 'not_started';
    const div = document.createElement('div');
    div.className = `target${r.target === activeTarget ? ' active' : ''}`;
    div.dataset.target = r.target;
    div.innerHTML = `<div class="t-title">${esc(r.title)} <span class="badge st-${esc(status)}">${esc(t(status))}</span></div>`
      + `<div class="bar"><div class="fill" style="width:${pct}%;background:${COLORS[status] || '#999'}"></div>`
      + `<div class="expected" style="left:${exp}%" title="${esc(t('expected'))}"></div></div>`
      + `<div class="t-meta"><span>${esc(t('actual'))} ${num(r.actual)} / ${esc(t('target'))} ${num(r.target_value)} ${esc(r.unit || '')}</span>`
      + `<span>${num(r.percent)}%</span></div>`;
    div.addEventListener('click', () => onTarget(r));
    list.appendChild(div);
  }
  if (cfg.endpoints.ranking) {
    try {
      // The ranking covers the targets running in a quarter; after the last deadline, show the last one.
      const last = records.map((r) => r.deadline).filter(Boolean).sort().pop();
      const quarter = quarterOf(last && last < asOf ? last : asOf);
      const body = await getJSON(cfg.endpoints.ranking + qs({ quarter }), { signal });
      const rows = firstArray(body, ['ranking', 'districts', 'items', 'rows']);
      const arrow = (c) => (c > 0 ? `<span style="color:#2ca02c">↑${c}</span>` : c < 0 ? `<span style="color:#d62728">↓${-c}</span>` : '');
      ranking.innerHTML = `<p class="note">${esc(body.quarter || quarter)}</p><table class="rank"><tr><th>${esc(t('rank'))}</th>`
        + `<th>${esc(t('district_name'))}</th><th>${esc(t('score'))}</th></tr>`
        + rows.map((d) => `<tr data-district="${esc(d.district_code)}"${d.district_code === district ? ' style="font-weight:bold"' : ''}>`
          + `<td>${esc(d.rank)} ${arrow(Number(d.change || 0))}</td><td>${esc(d.district_name || d.name || d.district_code)}</td>`
          + `<td>${num(d.score)}</td></tr>`).join('') + '</table>' + reportLinks(cfg, body.quarter || quarter, asOf);
    } catch (e) {
      if (e.name !== 'AbortError') ranking.innerHTML = `<p class="note">${esc(e.message)}</p>`;
    }
  }
  return records;
}
