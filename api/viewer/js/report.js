// 填报与审核: sign in, report a change with photos, see its review; reviewers approve or return (one or many).
// Forms come from /collections/{id}/submission-form (the layer registry); every write sends the
// session's CSRF token. Plain DOM, no framework; works offline (no external asset). The small map
// (draw.js, terra-draw) draws a new feature or edits the picked feature's vertices.
import { createDrawMap } from './draw.js';
import { addStrings, applyI18n, lang, setLang, t } from './i18n.js';

addStrings({
  zh: { r_title: '填报与审核', r_map: '地图', r_signin: '登录', r_signout: '退出', r_user: '用户名', r_password: '密码',
    r_or_key: '或 API 密钥', r_report: '填报', r_layer: '图层', r_feature: '要素', r_eff: '生效日期', r_doc: '文件/批复号',
    r_note: '说明', r_photos: '现场照片与文件（可直接拍照）', r_submit: '提交审核', r_resubmit: '修改后重新提交', r_mine: '我的填报',
    r_queue: '待审核', r_district: '区县', r_all: '全部', r_approve_sel: '批量通过', r_return_sel: '批量退回',
    r_comment: '退回意见（退回时必填）', r_approve: '通过', r_return: '退回', r_before: '变更前', r_after: '变更后',
    r_due: '督办清单', r_due_note: '期限已过或30天内到期、尚未达到要求状态的目标。', r_sent: '已提交，等待审核（#{id}）',
    r_none: '暂无', r_correct: '修改并重新提交', r_taken: '拍摄', r_unchanged: '（不变）', r_status: '状态',
    r_new: '＋ 新要素（在地图上绘制）', r_draw: '绘制', r_draw_point: '画点', r_draw_linestring: '画线', r_draw_polygon: '画面',
    r_edit_vertices: '编辑节点', r_clear_geom: '清除图形', r_reset_geom: '恢复原图形',
    r_geom_new: '新要素：在地图上{what}。点击添加节点，点击第一个节点或按回车结束；可画多个部分。',
    r_geom_same: '图形未修改。点选图形后拖动节点修改，拖动中点插入节点，右键节点删除。',
    r_geom_changed: '图形已修改（{n} 个部分），随本次填报提交审核。', r_geom_holes: '此要素含内环（洞），不能在此修改图形。',
    r_geom_invalid: '此要素的图形不能在此编辑。', r_geom_needed: '新要素需要先在地图上绘制图形。', r_geom_nomap: '绘图地图无法在此浏览器启动（需要 WebGL），仍可填报属性与状态。',
    r_shape: '图形', r_shape_old: '原图形', r_shape_new: '已修改（见下图）' },
  en: { r_title: 'Reporting and review', r_map: 'Map', r_signin: 'Sign in', r_signout: 'Sign out', r_user: 'User name',
    r_password: 'Password', r_or_key: 'or API key', r_report: 'Report a change', r_layer: 'Layer', r_feature: 'Feature',
    r_eff: 'Effective date', r_doc: 'Document no.', r_note: 'Note', r_photos: 'Photos and documents (camera works)',
    r_submit: 'Submit for review', r_resubmit: 'Resubmit corrected', r_mine: 'My submissions', r_queue: 'Pending review',
    r_district: 'District', r_all: 'All', r_approve_sel: 'Approve selected', r_return_sel: 'Return selected',
    r_comment: 'Comment (required to return)', r_approve: 'Approve', r_return: 'Return', r_before: 'Before', r_after: 'After',
    r_due: 'Due list', r_due_note: 'Targets past or within 30 days of their deadline without the required status.',
    r_sent: 'Submitted, waiting for review (#{id})', r_none: 'None', r_correct: 'Correct and resubmit', r_taken: 'taken',
    r_unchanged: '(unchanged)', r_status: 'Status',
    r_new: '+ New feature (draw on the map)', r_draw: 'Draw', r_draw_point: 'Draw point', r_draw_linestring: 'Draw line',
    r_draw_polygon: 'Draw polygon', r_edit_vertices: 'Edit vertices', r_clear_geom: 'Clear shape', r_reset_geom: 'Restore shape',
    r_geom_new: 'New feature: {what} on the map. Click to add vertices; click the first vertex or press Enter to finish; '
      + 'several parts are fine.',
    r_geom_same: 'Shape unchanged. Click the shape, then drag a vertex to move it, drag a midpoint to insert one, '
      + 'right-click a vertex to delete it.',
    r_geom_changed: 'Shape changed ({n} parts): it is submitted for review with this report.',
    r_geom_holes: 'This feature has holes; its shape cannot be edited here.', r_geom_invalid: 'This shape cannot be edited here.',
    r_geom_needed: 'Draw the new feature on the map first.',
    r_geom_nomap: 'The drawing map cannot start here (WebGL is needed); attributes and status can still be reported.', r_shape: 'Shape', r_shape_old: 'as it was',
    r_shape_new: 'changed (see below)' },
});

const $ = (sel) => document.querySelector(sel);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const L = (o, base = 'label') => (lang() === 'en' && o[`${base}_en`]) || o[base] || '';
let me = { role: 'anonymous' };
let forms = {};
let feature = null;
let cfg = null;
let drawMap = null;
const NEW = 'new';  // the #feature option of a new feature

async function call(method, url, body, isForm = false) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && me.csrf) headers['X-CSRF-Token'] = me.csrf;
  if (body !== undefined && !isForm) headers['Content-Type'] = 'application/json';
  const resp = await fetch(url, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : (isForm ? body : JSON.stringify(body)) });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.detail || `${resp.status}`);
  return data;
}

async function form(layerId) {
  if (!forms[layerId]) forms[layerId] = await call('GET', `/collections/${encodeURIComponent(layerId)}/submission-form`);
  return forms[layerId];
}

function statusName(f, code) {
  const s = f.lifecycle?.statuses.find((x) => x.code === code);
  return s ? L(s) : (code ?? '—');
}

// ------------------------------------------------------------------ sign in

async function refreshIdentity() {
  me = await call('GET', '/auth/session');
  const signed = me.role !== 'anonymous';
  $('#signin').hidden = signed;
  $('#btn-signout').hidden = !signed;
  $('#who').textContent = signed ? `${me.name} (${me.role}${me.districts.length ? ' ' + me.districts.join(',') : ''})` : '';
  $('#report').hidden = !['editor', 'reviewer', 'admin'].includes(me.role);
  $('#queue').hidden = !['reviewer', 'admin'].includes(me.role);
  document.body.classList.toggle('reviewing', !$('#queue').hidden);  // reviewers see their queue first
  $('#due').hidden = !signed;
  if (signed) await Promise.all([loadLayers(), loadMine(), $('#queue').hidden ? null : loadQueue(), loadDue()]);
}

$('#signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const fd = new FormData(ev.target);
  const body = fd.get('api_key') ? { api_key: fd.get('api_key') } : { user: fd.get('user'), password: fd.get('password') };
  try {
    $('#signin-error').textContent = '';
    const who = await call('POST', '/auth/session', body);
    me = who;
    await refreshIdentity();
  } catch (e) { $('#signin-error').textContent = e.message; }
});

$('#btn-signout').addEventListener('click', async () => { await call('DELETE', '/auth/session'); location.reload(); });

// ------------------------------------------------------------------ the form

async function loadLayers() {
  cfg = await call('GET', '/viewer/config');
  const layers = cfg.layers.filter((l) => l.kind === 'renewal');
  if (!drawMap) {
    drawMap = createDrawMap('draw-map', cfg, showDrawState);
    window.reportDraw = drawMap;  // for scripts and tests
    $('#draw-basemap').innerHTML = drawMap.basemaps().map((o) => `<option value="${esc(o.id)}">${esc(o.label)}</option>`).join('');
  }
  $('#layer').innerHTML = layers.map((l) => `<option value="${esc(l.id)}">${esc(L(l, 'title'))}</option>`).join('');
  $('#q-layer').innerHTML = `<option value="">${esc(t('r_all'))}</option>`
    + layers.map((l) => `<option value="${esc(l.id)}">${esc(L(l, 'title'))}</option>`).join('');
  const districts = cfg.districts || [];
  $('#q-district').innerHTML = `<option value="">${esc(t('r_all'))}</option>`
    + districts.map((d) => `<option value="${esc(d.code)}">${esc(d.name)}</option>`).join('');
  await loadFeatures();
}

let listSeq = 0;

async function loadFeatures() {
  const seq = ++listSeq;
  const layerId = $('#layer').value;
  const district = me.districts.length ? `&district_code=${encodeURIComponent(me.districts[0])}` : '';
  const items = await call('GET', `/collections/${encodeURIComponent(layerId)}/items?limit=1000${district}`);
  if (seq !== listSeq || $('#layer').value !== layerId) return;  // a later load, or another layer, owns the list
  // a feature the user already picked in this layer (or "new") stays picked when the list is drawn again
  const keep = $('#feature').dataset.layer === layerId ? $('#feature').value : '';
  $('#feature').innerHTML = `<option value="${NEW}">${esc(t('r_new'))}</option>`
    + items.features.map((f) => `<option value="${esc(f.id)}">${esc(f.properties.name)} · `
    + `${esc(f.properties.code)}</option>`).join('');
  $('#feature').dataset.layer = layerId;
  $('#feature').value = items.features.length ? String(items.features[0].id) : NEW;
  if (keep === NEW || (keep && items.features.some((f) => String(f.id) === keep))) $('#feature').value = keep;
  const f = await form(layerId);
  await drawMap.setContext(f.geometry_type, items.features);
  if (seq !== listSeq) return;  // a later load draws the form
  await renderForm();
}

let renderSeq = 0;  // a quick second pick must not be overwritten by the first pick's slower answer

async function renderForm(prefill = null, prefillGeometry = null) {
  const seq = ++renderSeq;
  const f = await form($('#layer').value);
  const fid = $('#feature').value;
  const isNew = fid === NEW;
  const picked = fid && !isNew ? await call('GET', `/collections/${encodeURIComponent(f.collection)}/items/${encodeURIComponent(fid)}`) : null;
  if (seq !== renderSeq) return;  // a later renderForm owns the form now
  feature = picked;
  const props = feature?.properties || {};
  const want = prefill || {};
  let html = '';
  if (f.lifecycle) {
    const cur = props.status;
    const next = isNew ? f.lifecycle.statuses.map((x) => x.code) : [cur, ...(f.lifecycle.transitions[cur] || [])];
    html += `<label><span>${esc(L(f.lifecycle))}</span><select name="status" data-field="status">`
      + next.map((c) => `<option value="${esc(c)}"${(want.status ?? cur) === c ? ' selected' : ''}>${esc(statusName(f, c))}`
        + `${c === cur && !isNew ? ' ' + esc(t('r_unchanged')) : ''}</option>`).join('') + '</select></label>';
  }
  for (const fd of f.fields) {
    if (fd.name === 'code' && !isNew) continue;  // a feature's code is its identity; a new one needs one
    const value = want[fd.name] ?? props[fd.name] ?? '';
    const unit = fd.unit && !L(fd).includes(fd.unit) && !L(fd).includes('（') ? ` (${fd.unit})` : '';
    if (fd.choices) {
      html += `<label><span>${esc(L(fd))}</span><select data-field="${esc(fd.name)}"><option value=""></option>`
        + fd.choices.map((c) => `<option value="${esc(c.code)}"${value === c.code ? ' selected' : ''}>${esc(L(c))}</option>`).join('')
        + '</select></label>';
    } else {
      const type = fd.type === 'integer' || fd.type === 'number' ? 'number' : (fd.type === 'date' ? 'date' : 'text');
      html += `<label><span>${esc(L(fd))}${esc(unit)}</span><input type="${type}" data-field="${esc(fd.name)}"`
        + ` value="${esc(value)}"${fd.type === 'number' ? ' step="any"' : ''}></label>`;
    }
  }
  $('#fields').innerHTML = html;
  $('#fields').dataset.original = JSON.stringify(props);
  $('#fields').dataset.fid = fid || '';  // which feature the form shows (tests and scripts wait on it)
  $('#draw-draw').textContent = t(`r_draw_${{ Point: 'point', MultiPoint: 'point', LineString: 'linestring',
    MultiLineString: 'linestring' }[f.geometry_type] || 'polygon'}`);
  await drawMap.edit(prefillGeometry || feature?.geometry || null);
  if (prefillGeometry) drawMap.changed = true;
  if (seq === renderSeq) showDrawState(drawMap.state());
}

function showDrawState(st) {
  const box = $('#draw-state');
  const what = $('#draw-draw').textContent;
  box.className = `note${st.changed ? ' changed' : ''}`;
  box.dataset.changed = String(st.changed);
  box.dataset.parts = String(st.parts);
  box.textContent = st.note ? t(`r_geom_${st.note}`) : st.changed ? t('r_geom_changed', { n: st.parts })
    : st.isNew ? t('r_geom_new', { what }) : t('r_geom_same');
  $('#draw-edit').classList.toggle('on', st.mode === 'select');
  $('#draw-draw').classList.toggle('on', !!st.mode && !['select', 'static'].includes(st.mode));
  $('#draw-edit').disabled = !!st.note;
  $('#draw-draw').disabled = !!st.note && !st.isNew;
}

function proposal(f) {
  const original = JSON.parse($('#fields').dataset.original || '{}');
  const out = {};
  document.querySelectorAll('#fields [data-field]').forEach((el) => {
    const name = el.dataset.field;
    let v = el.value === '' ? null : el.value;
    const def = f.fields.find((x) => x.name === name);
    if (v !== null && def && (def.type === 'integer' || def.type === 'number')) v = Number(v);
    if ((original[name] ?? null) !== v) out[name] = v;
  });
  return out;
}

$('#layer').addEventListener('change', loadFeatures);
$('#feature').addEventListener('change', () => renderForm());
$('#draw-draw').addEventListener('click', () => drawMap.setMode('draw'));
$('#draw-edit').addEventListener('click', () => drawMap.setMode('select'));
$('#draw-clear').addEventListener('click', () => drawMap.clear());
$('#draw-reset').addEventListener('click', () => drawMap.reset());
$('#draw-basemap').addEventListener('change', (e) => drawMap.setBasemap(e.target.value));

$('#sub-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = await form($('#layer').value);
  const fd = new FormData(ev.target);
  const body = { type: 'Feature', properties: proposal(f),
    change: { effective_date: fd.get('effective_date') || null, document: fd.get('document') || null, note: fd.get('note') || null } };
  const resub = fd.get('resubmit');
  const isNew = $('#fields').dataset.fid === NEW;
  if (isNew || drawMap.changed) {
    const geometry = drawMap.geometry();
    if (!geometry) { $('#sub-msg').className = 'error'; $('#sub-msg').textContent = t('r_geom_needed'); return; }
    body.geometry = geometry;  // GeoJSON in CRS84, as the Part 4 writes take it
  }
  try {
    const sub = resub ? await call('POST', `/submissions/${resub}/resubmit`, body)
      : isNew ? await call('POST', `/collections/${encodeURIComponent(f.collection)}/submissions`, body)
        : await call('POST', `/collections/${encodeURIComponent(f.collection)}/items/${encodeURIComponent(feature.id)}/submissions`, body);
    for (const file of $('#files').files) {
      const data = new FormData();
      data.append('file', file, file.name);
      await call('POST', `/submissions/${sub.id}/attachments`, data, true);
    }
    $('#sub-msg').className = '';
    $('#sub-msg').textContent = t('r_sent', { id: sub.id });
    ev.target.reset();
    ev.target.resubmit.value = '';
    drawMap.setBasemap($('#draw-basemap').value);  // the reset form shows the default basemap again
    $('#btn-submit').textContent = t('r_submit');
    await Promise.all([loadMine(), renderForm(), $('#queue').hidden ? null : loadQueue()]);
  } catch (e) { $('#sub-msg').className = 'error'; $('#sub-msg').textContent = e.message; }
});

// ------------------------------------------------------------------ lists

function thumbs(s) {
  return '<div class="thumbs">' + (s.attachments || []).map((a) => `<figure>`
    + (a.thumbnail_href ? `<a href="${esc(a.href)}" target="_blank"><img src="${esc(a.thumbnail_href)}" alt=""></a>`
      : `<a href="${esc(a.href)}" target="_blank">${esc(a.file_name || 'PDF')}</a>`)
    + `<figcaption>${a.taken_at ? esc(t('r_taken')) + ' ' + esc(a.taken_at.replace('T', ' ')) : ''}`
    + `${a.position ? ` · ${a.position[0].toFixed(5)}, ${a.position[1].toFixed(5)}` : ''}</figcaption>`
    + `${a.warning ? `<div class="warn">⚠ ${esc(a.warning)}</div>` : ''}</figure>`).join('') + '</div>';
}

function shape(geom, box, color) {
  if (!geom) return '';
  const rings = [];
  const walk = (c, depth) => { if (typeof c[0] === 'number') rings.push([c]); else if (typeof c[0][0] === 'number') rings.push(c); else c.forEach((x) => walk(x, depth + 1)); };
  walk(geom.coordinates, 0);
  const [x0, y0, x1, y1] = box;
  const sx = 300 / Math.max(x1 - x0, 1e-9); const sy = 140 / Math.max(y1 - y0, 1e-9); const s = Math.min(sx, sy) * 0.85;
  const px = (p) => `${(150 + (p[0] - (x0 + x1) / 2) * s).toFixed(1)},${(70 - (p[1] - (y0 + y1) / 2) * s).toFixed(1)}`;
  const line = geom.type.includes('LineString');
  return rings.map((r) => (r.length === 1 ? `<circle cx="${px(r[0]).split(',')[0]}" cy="${px(r[0]).split(',')[1]}" r="5" fill="${color}"/>`
    : line ? `<polyline points="${r.map(px).join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`
      : `<polygon points="${r.map(px).join(' ')}" fill="${color}" fill-opacity=".45" stroke="${color}"/>`)).join('');
}

function bbox(...geoms) {
  const xs = []; const ys = [];
  const walk = (c) => { if (typeof c[0] === 'number') { xs.push(c[0]); ys.push(c[1]); } else c.forEach(walk); };
  geoms.filter(Boolean).forEach((g) => walk(g.coordinates));
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

async function beforeAfter(s) {
  const f = await form(s.collection);
  const before = s.before?.properties || {};
  const after = s.proposal.properties || {};
  const names = ['status', ...f.fields.map((x) => x.name)].filter((n) => n in after || (n in before && n !== 'code'));
  const val = (n, v) => (n === 'status' ? statusName(f, v) : v ?? '—');
  const lbl = (n) => (n === 'status' ? L(f.lifecycle || { label: t('r_status') }) : L(f.fields.find((x) => x.name === n) || { label: n }));
  let rowsB = names.filter((n) => n in after).map((n) => `<tr><td>${esc(lbl(n))}</td><td>${esc(val(n, before[n]))}</td></tr>`).join('');
  let rowsA = names.filter((n) => n in after).map((n) => `<tr><td>${esc(lbl(n))}</td><td class="changed">${esc(val(n, after[n]))}</td></tr>`).join('');
  if (s.proposal.geometry && s.before) {  // a changed shape is named, not only drawn
    rowsB += `<tr><td>${esc(t('r_shape'))}</td><td>${esc(t('r_shape_old'))}</td></tr>`;
    rowsA += `<tr><td>${esc(t('r_shape'))}</td><td class="changed">${esc(t('r_shape_new'))}</td></tr>`;
  }
  const gB = s.before?.geometry; const gA = s.proposal.geometry || gB;
  const box = bbox(gB, gA);
  return `<div class="ba"><div><h4>${esc(t('r_before'))}</h4><table>${rowsB}</table>`
    + `<svg viewBox="0 0 300 140">${shape(gB, box, '#888')}</svg></div>`
    + `<div><h4>${esc(t('r_after'))}</h4><table>${rowsA}</table><svg viewBox="0 0 300 140">${shape(gA, box, '#1f5fa8')}</svg></div></div>`;
}

function head(s) {
  return `<div class="head"><strong>#${s.id}</strong> <span class="pill ${esc(s.status)}">${esc(lang() === 'en' ? s.status : s.status_label)}</span>`
    + ` ${esc(lang() === 'en' ? s.collection_title_en : s.collection_title)} · ${esc(s.feature_name || '')}`
    + ` · ${esc(s.district_name || s.district || '')} · ${esc(s.submitted_by)}</div>`
    + (s.change?.effective_date ? `<div class="note">${esc(t('r_eff'))}: ${esc(s.change.effective_date)}`
      + `${s.change.document ? ' · ' + esc(s.change.document) : ''}${s.change.note ? ' · ' + esc(s.change.note) : ''}</div>` : '');
}

async function loadMine() {
  const data = await call('GET', '/submissions?limit=50');
  const mine = data.submissions.filter((s) => s.submitted_by === me.name);
  $('#mine').innerHTML = mine.length ? mine.map((s) => `<div class="sub" data-sid="${s.id}" data-status="${esc(s.status)}">${head(s)}`
    + (s.comment && s.status === 'returned' ? `<div class="comment">${esc(s.comment)}</div>` : '')
    + (s.status === 'returned' ? `<button type="button" class="secondary" data-correct="${s.id}">${esc(t('r_correct'))}</button>` : '')
    + '</div>').join('') : `<p class="note">${esc(t('r_none'))}</p>`;
  document.querySelectorAll('[data-correct]').forEach((b) => b.addEventListener('click', async () => {
    const s = mine.find((x) => String(x.id) === b.dataset.correct);
    $('#layer').value = s.collection;
    await loadFeatures();
    $('#feature').value = s.featureId == null ? NEW : String(s.featureId);
    await renderForm(s.proposal.properties, s.proposal.geometry || null);
    const fm = $('#sub-form');
    fm.resubmit.value = s.id;
    fm.effective_date.value = s.change.effective_date || '';
    fm.document.value = s.change.document || '';
    fm.note.value = s.change.note || '';
    $('#btn-submit').textContent = t('r_resubmit');
    fm.scrollIntoView();
  }));
}

async function loadQueue() {
  const params = new URLSearchParams({ status: 'pending' });
  if ($('#q-district').value) params.set('district', $('#q-district').value);
  if ($('#q-layer').value) params.set('collection', $('#q-layer').value);
  const data = await call('GET', `/submissions?${params}`);
  const full = await Promise.all(data.submissions.map((s) => call('GET', `/submissions/${s.id}`)));
  const parts = await Promise.all(full.map(async (s) => `<div class="sub" data-sid="${s.id}">`
    + `<label class="pick"><input type="checkbox" value="${s.id}"> ${head(s)}</label>${await beforeAfter(s)}${thumbs(s)}`
    + `<div class="actions"><button type="button" data-approve="${s.id}">${esc(t('r_approve'))}</button>`
    + `<input data-comment="${s.id}" placeholder="${esc(t('r_comment'))}">`
    + `<button type="button" class="secondary" data-return="${s.id}">${esc(t('r_return'))}</button></div>`
    + '<p class="error" role="alert"></p></div>'));
  $('#queue-list').innerHTML = parts.join('') || `<p class="note">${esc(t('r_none'))}</p>`;
  document.querySelectorAll('[data-approve]').forEach((b) => b.addEventListener('click', () => decide([b.dataset.approve], 'approve')));
  document.querySelectorAll('[data-return]').forEach((b) => b.addEventListener('click', () => decide(
    [b.dataset.return], 'return', document.querySelector(`[data-comment="${b.dataset.return}"]`).value)));
}

async function decide(ids, action, comment = null) {
  for (const id of ids) {
    try { await call('POST', `/submissions/${id}/${action}`, { comment: comment || null }); } catch (e) {
      const box = document.querySelector(`.sub[data-sid="${id}"] .error`);
      if (box) box.textContent = e.message;
      return;
    }
  }
  await Promise.all([loadQueue(), loadMine()]);
}

async function loadDue() {
  const district = me.districts.length ? me.districts[0] : '';
  const q = district ? `?district=${encodeURIComponent(district)}` : '';
  const data = await call('GET', `/due${q}`);
  const link = `<p><a id="due-xlsx" href="/due${q}${q ? '&' : '?'}f=xlsx">XLSX</a> · ${data.count}</p>`;
  $('#due-list').innerHTML = link + (data.items.length ? '<table class="due"><tr><th>' + [t('r_district'), t('r_due'), 'deadline', 'gap', t('r_feature')].map(esc).join('</th><th>') + '</th></tr>'
    + data.items.map((i) => `<tr><td>${esc(i.district_name)}</td><td>${esc(i.title)}</td><td>${esc(i.deadline)} (${i.days_left})</td>`
      + `<td>${esc(i.gap)} ${esc(i.unit)}</td><td>${i.features.slice(0, 5).map((f) => esc(`${f.name}（${f.status_label}）`)).join('；')}`
      + `${i.features.length > 5 ? ` … ${i.features.length}` : ''}</td></tr>`).join('') + '</table>'
    : `<p class="note">${esc(t('r_none'))}</p>`);
}

const selected = () => [...document.querySelectorAll('#queue-list input[type=checkbox]:checked')].map((c) => c.value);
$('#btn-approve-sel').addEventListener('click', () => decide(selected(), 'approve'));
$('#btn-return-sel').addEventListener('click', () => decide(selected(), 'return', $('#batch-comment').value));
$('#q-district').addEventListener('change', loadQueue);
$('#q-layer').addEventListener('change', loadQueue);

$('#btn-lang').addEventListener('click', () => { setLang(lang() === 'zh' ? 'en' : 'zh'); location.reload(); });
setLang(lang());
$('#btn-lang').textContent = lang() === 'zh' ? 'EN' : '中文';
applyI18n();
document.title = t('r_title');
refreshIdentity().catch((e) => { $('#signin-error').textContent = e.message; });
