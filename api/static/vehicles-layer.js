/* Buses and trucks on one canvas: shapes by fleet, heading arrows, stale vehicles greyed, and
   a short glide to each new fix. Redraws only what changed; thousands of vehicles stay smooth. */
"use strict";

window.VehiclesLayer = L.Layer.extend({
  initialize: function (options) {
    this.staleMs = options.staleAfterS * 1000;
    this.glideMs = options.glideMs;
    this.vehicles = new Map();   // id -> {id, fleet, route, lat, lon, heading, tsMs, from, at}
    this.filter = function () { return true; };
    this.showStale = true;
    this.selected = null;
    this._frame = null;
  },

  onAdd: function (map) {
    this._canvas = L.DomUtil.create("canvas", "leaflet-zoom-hide vehicles-canvas");
    this._canvas.style.pointerEvents = "none";
    map.getPanes().overlayPane.appendChild(this._canvas);
    map.on("moveend zoomend resize", this._reset, this);
    map.on("move", this._reset, this);
    this._reset();
  },

  onRemove: function (map) {
    L.DomUtil.remove(this._canvas);
    map.off("moveend zoomend resize move", this._reset, this);
  },

  /** Apply fixes from a frame; a fix older than the one held is ignored. */
  update: function (items) {
    const now = performance.now();
    for (const v of items) {
      const tsMs = Date.parse(v.ts);
      const held = this.vehicles.get(v.id);
      if (held && held.tsMs > tsMs) continue;
      const from = held ? this._displayed(held, now) : null;
      this.vehicles.set(v.id, {
        id: v.id, fleet: v.fleet, route: v.route, label: v.label, lat: v.lat, lon: v.lon,
        heading: v.heading_deg, speed: v.speed_kmh, tsMs: tsMs, from: from, at: now,
      });
    }
    this.redraw();
  },

  _displayed: function (v, now) {
    if (!v.from || now - v.at >= this.glideMs) return [v.lat, v.lon];
    const k = (now - v.at) / this.glideMs;
    return [v.from[0] + (v.lat - v.from[0]) * k, v.from[1] + (v.lon - v.from[1]) * k];
  },

  isStale: function (v) { return Date.now() - v.tsMs > this.staleMs; },

  redraw: function () {
    if (!this._map || this._frame !== null) return;
    this._frame = L.Util.requestAnimFrame(this._draw, this);
  },

  _reset: function () {
    const map = this._map;
    const size = map.getSize();
    const topLeft = map.containerPointToLayerPoint([0, 0]);
    L.DomUtil.setPosition(this._canvas, topLeft);
    const ratio = window.devicePixelRatio || 1;
    this._canvas.width = size.x * ratio;
    this._canvas.height = size.y * ratio;
    this._canvas.style.width = size.x + "px";
    this._canvas.style.height = size.y + "px";
    this._ratio = ratio;
    this._draw();
  },

  screenPoint: function (id) {
    const v = this.vehicles.get(id);
    if (!v || !this._map) return null;
    const p = this._map.latLngToContainerPoint(this._displayed(v, performance.now()));
    return { x: p.x, y: p.y };
  },

  visibleVehicles: function () {
    const out = [];
    for (const v of this.vehicles.values()) {
      if (!this.filter(v)) continue;
      if (!this.showStale && this.isStale(v)) continue;
      out.push(v);
    }
    return out;
  },

  _draw: function () {
    this._frame = null;
    const map = this._map;
    if (!map) return;
    const ctx = this._canvas.getContext("2d");
    ctx.setTransform(this._ratio, 0, 0, this._ratio, 0, 0);
    const size = map.getSize();
    ctx.clearRect(0, 0, size.x, size.y);
    const now = performance.now();
    let gliding = false;
    for (const v of this.visibleVehicles()) {
      const pos = this._displayed(v, now);
      if (v.from && now - v.at < this.glideMs) gliding = true;
      const p = map.latLngToContainerPoint(pos);
      if (p.x < -20 || p.y < -20 || p.x > size.x + 20 || p.y > size.y + 20) continue;
      const stale = this.isStale(v);
      const fill = stale ? "#9a9a9a" : (v.fleet === "bus" ? "#1f6feb" : "#2e9e44");
      ctx.beginPath();
      if (v.fleet === "bus") {
        ctx.arc(p.x, p.y, 7, 0, 2 * Math.PI);
      } else {
        ctx.rect(p.x - 6, p.y - 6, 12, 12);
      }
      ctx.fillStyle = fill;
      ctx.fill();
      ctx.lineWidth = v.id === this.selected ? 3 : 1.5;
      ctx.strokeStyle = v.id === this.selected ? "#f3a712" : "#fff";
      ctx.stroke();
      if (v.heading !== null && v.heading !== undefined && !stale) {
        const a = (v.heading - 90) * Math.PI / 180;
        ctx.beginPath();
        ctx.moveTo(p.x + Math.cos(a) * 15, p.y + Math.sin(a) * 15);
        ctx.lineTo(p.x + Math.cos(a + 2.6) * 8, p.y + Math.sin(a + 2.6) * 8);
        ctx.lineTo(p.x + Math.cos(a - 2.6) * 8, p.y + Math.sin(a - 2.6) * 8);
        ctx.closePath();
        ctx.fillStyle = fill;
        ctx.fill();
      }
    }
    if (gliding) this.redraw();
  },

  /** The vehicle nearest to a container point, within maxPx, or null. */
  nearest: function (point, maxPx) {
    let best = null, bestD = maxPx;
    const now = performance.now();
    for (const v of this.visibleVehicles()) {
      const d = this._map.latLngToContainerPoint(this._displayed(v, now)).distanceTo(point);
      if (d <= bestD) { bestD = d; best = v; }
    }
    return best;
  },
});
