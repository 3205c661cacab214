/* Streetlights on canvas tiles: tens of thousands of points, grouped into per-cell clusters
   below zoom 16 (filled with the most common status, ringed red if a light in it is faulty,
   grey if one is silent), single dots above. No DOM element per light. */
"use strict";

window.LightsLayer = L.GridLayer.extend({
  options: { tileSize: 256, clusterPx: 28, pane: "overlayPane" },

  initialize: function (statusNames, colours, options) {
    L.setOptions(this, options);
    this.statusNames = statusNames;   // index -> name, as the API's compact format
    this.colours = colours;           // name -> CSS colour
    this.visible = new Set(statusNames);
    // A cluster is filled with its most common status and ringed by the worst problem in it.
    this.rank = ["faulty", "silent", "off", "dimmed", "on"];
    this.setData({ ids: [], lat: [], lon: [], status: [] });
  },

  setData: function (data) {
    this.data = data;
    this.grid = new Map();  // 0.005 degree cells -> indexes, for fast tile queries
    for (let i = 0; i < data.ids.length; i++) {
      if (data.lat[i] === null || data.lon[i] === null) continue;
      const key = Math.floor(data.lat[i] / 0.005) + ":" + Math.floor(data.lon[i] / 0.005);
      let cell = this.grid.get(key);
      if (!cell) { cell = []; this.grid.set(key, cell); }
      cell.push(i);
    }
    if (this._map) this.redraw();
  },

  setVisible: function (names) {
    this.visible = new Set(names);
    if (this._map) this.redraw();
  },

  _indexesIn: function (bounds) {
    const out = [];
    const s = Math.floor(bounds.getSouth() / 0.005), n = Math.floor(bounds.getNorth() / 0.005);
    const w = Math.floor(bounds.getWest() / 0.005), e = Math.floor(bounds.getEast() / 0.005);
    for (let a = s; a <= n; a++) {
      for (let b = w; b <= e; b++) {
        const cell = this.grid.get(a + ":" + b);
        if (cell) for (const i of cell) out.push(i);
      }
    }
    return out;
  },

  createTile: function (coords) {
    const tile = document.createElement("canvas");
    const size = this.getTileSize();
    tile.width = size.x;
    tile.height = size.y;
    const ctx = tile.getContext("2d");
    const map = this._map;
    const nw = coords.scaleBy(size);
    const pad = 8;
    const bounds = L.latLngBounds(
      map.unproject(nw.subtract([pad, pad]), coords.z),
      map.unproject(nw.add(size).add([pad, pad]), coords.z),
    );
    const d = this.data;
    const points = [];
    for (const i of this._indexesIn(bounds)) {
      const name = this.statusNames[d.status[i]];
      if (!this.visible.has(name)) continue;
      const p = map.project([d.lat[i], d.lon[i]], coords.z).subtract(nw);
      points.push([p.x, p.y, name]);
    }
    if (coords.z >= 16) {
      for (const [x, y, name] of points) {
        ctx.beginPath();
        ctx.arc(x, y, 4, 0, 2 * Math.PI);
        ctx.fillStyle = this.colours[name];
        ctx.fill();
        ctx.lineWidth = 1;
        ctx.strokeStyle = "rgba(0,0,0,.5)";
        ctx.stroke();
      }
      return tile;
    }
    // Clusters per cell of clusterPx pixels, aligned to the world so tiles agree at edges.
    const cells = new Map();
    const cp = this.options.clusterPx;
    for (const [x, y, name] of points) {
      const key = Math.floor((x + nw.x) / cp) + ":" + Math.floor((y + nw.y) / cp);
      let c = cells.get(key);
      if (!c) { c = { x: 0, y: 0, n: 0, worst: 9, counts: {} }; cells.set(key, c); }
      c.x += x; c.y += y; c.n += 1;
      c.worst = Math.min(c.worst, this.rank.indexOf(name));
      c.counts[name] = (c.counts[name] || 0) + 1;
    }
    ctx.font = "bold 10px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const c of cells.values()) {
      const x = c.x / c.n, y = c.y / c.n;
      const r = c.n === 1 ? 3.5 : Math.min(16, 5 + Math.log2(c.n) * 1.6);
      let common = null;
      for (const name in c.counts) if (!common || c.counts[name] > c.counts[common]) common = name;
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = this.colours[common];
      ctx.globalAlpha = c.n === 1 ? 1 : 0.8;
      ctx.fill();
      ctx.globalAlpha = 1;
      const worst = this.rank[c.worst];
      if (c.n > 1 && (worst === "faulty" || worst === "silent")) {
        ctx.lineWidth = 2.5;
        ctx.strokeStyle = this.colours[worst];
        ctx.stroke();
      }
      if (c.n >= 10 && r >= 9) {
        ctx.fillStyle = common === "off" ? "#fff" : "#111";
        ctx.fillText(c.n > 999 ? Math.round(c.n / 1000) + "k" : String(c.n), x, y);
      }
    }
    return tile;
  },

  /** The light nearest to a container point, within maxPx, or null (for popups). */
  nearest: function (containerPoint, maxPx) {
    const map = this._map;
    const ll = map.containerPointToLatLng(containerPoint);
    const span = map.containerPointToLatLng(containerPoint.add([maxPx, maxPx]));
    const bounds = L.latLngBounds([2 * ll.lat - span.lat, 2 * ll.lng - span.lng], span);
    let best = null, bestD = maxPx * maxPx;
    const d = this.data;
    for (const i of this._indexesIn(bounds)) {
      if (!this.visible.has(this.statusNames[d.status[i]])) continue;
      const p = map.latLngToContainerPoint([d.lat[i], d.lon[i]]);
      const dd = p.distanceTo(containerPoint) ** 2;
      if (dd <= bestD) { bestD = dd; best = i; }
    }
    return best === null ? null : {
      id: d.ids[best], lat: d.lat[best], lon: d.lon[best],
      status: this.statusNames[d.status[best]],
    };
  },
});
