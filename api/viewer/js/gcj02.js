// WGS84/CGCS2000 -> GCJ-02 (the offset datum of Gaode/Tencent tiles), the published algorithm,
// the same as gis/chinacrs.py (a browser test compares the two).
const A = 6378245.0;
const EE = 0.00669342162296594323;

function outOfChina(lon, lat) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }

function tLat(x, y) {
  let r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  r += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  r += ((20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin((y / 3.0) * Math.PI)) * 2.0) / 3.0;
  r += ((160.0 * Math.sin((y / 12.0) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30.0)) * 2.0) / 3.0;
  return r;
}

function tLon(x, y) {
  let r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  r += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  r += ((20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin((x / 3.0) * Math.PI)) * 2.0) / 3.0;
  r += ((150.0 * Math.sin((x / 12.0) * Math.PI) + 300.0 * Math.sin((x / 30.0) * Math.PI)) * 2.0) / 3.0;
  return r;
}

export function wgs84ToGcj02(lon, lat) {
  if (outOfChina(lon, lat)) return [lon, lat];
  let dLat = tLat(lon - 105.0, lat - 35.0);
  let dLon = tLon(lon - 105.0, lat - 35.0);
  const rad = (lat / 180.0) * Math.PI;
  let magic = Math.sin(rad);
  magic = 1 - EE * magic * magic;
  const sq = Math.sqrt(magic);
  dLat = (dLat * 180.0) / (((A * (1 - EE)) / (magic * sq)) * Math.PI);
  dLon = (dLon * 180.0) / ((A / sq) * Math.cos(rad) * Math.PI);
  return [lon + dLon, lat + dLat];
}

// Web-Mercator helpers (XYZ tiles of 256 px).
export function tileBounds(z, x, y) {
  const n = 2 ** z;
  const lon = (i) => (i / n) * 360 - 180;
  const lat = (j) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * j) / n))) * 180) / Math.PI;
  return { west: lon(x), east: lon(x + 1), north: lat(y), south: lat(y + 1) };
}

export function worldPixel(lon, lat, z) {
  const size = 256 * 2 ** z;
  const s = Math.sin((lat * Math.PI) / 180);
  return [((lon + 180) / 360) * size, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * size];
}

// Which GCJ-02 tiles cover WGS tile z/x/y, and where each goes on the 256-px output tile.
// The offset is ~300-600 m and varies by only metres across one tile, so mapping the tile's two
// corners (an affine stretch) is accurate to a fraction of a pixel.
export function shiftedSources(z, x, y) {
  const b = tileBounds(z, x, y);
  const [w, n] = wgs84ToGcj02(b.west, b.north);
  const [e, s] = wgs84ToGcj02(b.east, b.south);
  const [px0, py0] = worldPixel(w, n, z);
  const [px1, py1] = worldPixel(e, s, z);
  const sx = 256 / (px1 - px0);
  const sy = 256 / (py1 - py0);
  const out = [];
  for (let tx = Math.floor(px0 / 256); tx <= Math.floor((px1 - 1e-9) / 256); tx++) {
    for (let ty = Math.floor(py0 / 256); ty <= Math.floor((py1 - 1e-9) / 256); ty++) {
      out.push({ x: tx, y: ty, dx: (tx * 256 - px0) * sx, dy: (ty * 256 - py0) * sy, w: 256 * sx, h: 256 * sy });
    }
  }
  return out;
}
