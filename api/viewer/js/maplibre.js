// MapLibre GL JS from /vendor (npm, no CDN). From version 6 it ships as an ES module only (no `maplibregl`
// global); every page module imports it from here, and the worker it starts is loaded from /vendor next to it.
// The global is kept for the drawing adapter's UMD build (terra-draw-maplibre-gl-adapter), which reads it.
import * as maplibregl from '/vendor/maplibre-gl/maplibre-gl.mjs';

window.maplibregl = maplibregl;
export default maplibregl;
