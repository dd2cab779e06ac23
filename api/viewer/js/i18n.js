// Interface strings in Chinese (default) and English. Registry labels come from /viewer/config
// (label / label_en); this module only holds the viewer's own words.
const STRINGS = {
  zh: {
    title: '城市更新一张图', layers: '图层', basemap: '底图', downloads: '下载可见图层',
    progress_map: '打开进度专题图（folium）', demo_note: '演示数据，非官方数据（合成数据，仅供演示）',
    progress: '规划目标进度', ranking: '区县排名', loading: '加载中…', today: '今天', play: '播放',
    search_placeholder: '搜索名称或编码，如 华药', district: '区县', all_city: '全市', no_results: '无结果',
    bm_none: '无底图（本项目图层）', bm_osm: 'OpenStreetMap（需联网）', bm_tianditu: '天地图（需联网与密钥）',
    bm_gaode: '高德地图（需联网，GCJ-02 纠偏）', bm_note_gaode: '高德瓦片为 GCJ-02 坐标，已按瓦片坐标平移对齐 CGCS2000 数据。',
    bm_note_online: '外部底图需要访问互联网；内网环境请选择“无底图”。',
    not_listed: '未列入', area: '面积', length: '长度', mu: '亩', m: '米', status: '状态', history: '状态变化',
    no_history: '无状态记录', zoom_in: '放大至{z}级显示', on_track: '正常', behind: '滞后', met: '已完成',
    at_risk: '有风险', missed: '未完成', not_started: '未开始', actual: '实际', target: '目标', expected: '应达',
    rank: '名次', score: '得分', district_name: '区县', no_progress: '进度接口不可用', as_of: '截至',
    download_gpkg: 'GeoPackage', download_xlsx: 'Excel', features: '个要素', highlight: '已高亮 {n} 个要素',
    source_doc: '依据', from: '由', to: '变为', current: '当前状态', status_on: '{date} 状态',
  },
  en: {
    title: 'Urban renewal map', layers: 'Layers', basemap: 'Basemap', downloads: 'Download visible layers',
    progress_map: 'Open the progress map (folium)', demo_note: 'Synthetic demo data, not official',
    progress: 'Plan targets', ranking: 'District ranking', loading: 'Loading…', today: 'Today', play: 'Play',
    search_placeholder: 'Search name or code, e.g. 华药', district: 'District', all_city: 'Whole city', no_results: 'No results',
    bm_none: 'None (own layers)', bm_osm: 'OpenStreetMap (internet)', bm_tianditu: 'Tianditu (internet + key)',
    bm_gaode: 'Gaode (internet, GCJ-02 shifted)', bm_note_gaode: 'Gaode tiles are GCJ-02; they are shifted tile by tile onto the CGCS2000 data.',
    bm_note_online: 'External basemaps need internet access; on the intranet choose "None".',
    not_listed: 'Not yet listed', area: 'Area', length: 'Length', mu: 'mu', m: 'm', status: 'Status', history: 'Status history',
    no_history: 'No status records', zoom_in: 'visible from zoom {z}', on_track: 'On track', behind: 'Behind', met: 'Met',
    at_risk: 'At risk', missed: 'Missed', not_started: 'Not started', actual: 'actual', target: 'target', expected: 'expected',
    rank: 'Rank', score: 'Score', district_name: 'District', no_progress: 'Progress API not available', as_of: 'as of',
    download_gpkg: 'GeoPackage', download_xlsx: 'Excel', features: 'features', highlight: '{n} features highlighted',
    source_doc: 'Source', from: 'from', to: 'to', current: 'Current status', status_on: 'Status on {date}',
  },
};

let current = new URLSearchParams(location.search).get('lang') === 'en' ? 'en'
  : (localStorage.getItem('viewer.lang') || 'zh');
if (!(current in STRINGS)) current = 'zh';

export function lang() { return current; }

export function setLang(value) {
  current = value in STRINGS ? value : 'zh';
  try { localStorage.setItem('viewer.lang', current); } catch (e) { /* private mode */ }
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
}

export function t(key, vars = {}) {
  let text = STRINGS[current][key] ?? STRINGS.zh[key] ?? key;
  for (const [k, v] of Object.entries(vars)) text = text.replace(`{${k}}`, v);
  return text;
}

// A registry object's label in the current language ({label, label_en} or {title, title_en}).
export function label(obj, base = 'label') {
  if (!obj) return '';
  return (current === 'en' && obj[`${base}_en`]) || obj[base] || '';
}

// The city's own title (from /viewer/config, i.e. the database's city profile) in both languages.
export function setTitles(zh, en) {
  if (zh) STRINGS.zh.title = zh;
  if (en) STRINGS.en.title = en;
}

export function applyI18n(root = document) {
  root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll('[data-i18n-title]').forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  root.querySelectorAll('[data-i18n-placeholder]').forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.title = t('title');
}

// Other pages of the viewer (report.js) add their own words here, in both languages.
export function addStrings(more) {
  for (const code of Object.keys(STRINGS)) Object.assign(STRINGS[code], more[code] || {});
}
