/* Shared by the operator map and the crew board: token, authorised fetch, live WebSocket with
   reconnect, district outlines. Plain browser JavaScript, no build step. */
"use strict";

window.Rasd = (function () {
  const STORE = "rasd.token";

  /** The token from #token=... (kept out of server logs), else the one saved earlier. */
  function token() {
    const match = /(?:^|[#&])token=([^&]+)/.exec(window.location.hash);
    if (match) {
      const value = decodeURIComponent(match[1]);
      localStorage.setItem(STORE, value);
      history.replaceState(null, "", window.location.pathname + window.location.search);
      return value;
    }
    return localStorage.getItem(STORE);
  }

  function forgetToken() {
    localStorage.removeItem(STORE);
  }

  /** Ask for a token when none is known; resolves once one is entered. */
  function askToken(message) {
    return new Promise(function (resolve) {
      const box = document.getElementById("login");
      const input = document.getElementById("login-token");
      document.getElementById("login-message").textContent = message || "";
      box.hidden = false;
      document.getElementById("login-form").onsubmit = function (event) {
        event.preventDefault();
        const value = input.value.trim();
        if (!value) return;
        localStorage.setItem(STORE, value);
        box.hidden = true;
        resolve(value);
      };
    });
  }

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ Authorization: "Bearer " + Rasd.currentToken }, opts.headers);
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
      opts.method = opts.method || "POST";
    }
    const response = await fetch(path, opts);
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try {
        message = (await response.json()).error.message;
      } catch (ignored) { /* not our JSON error body */ }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return response;
  }

  /** A WebSocket that reconnects with backoff; onFrame gets parsed frames. */
  function live(path, params, onFrame, onStatus) {
    let attempt = 0;
    let socket = null;
    let closedByUs = false;
    let watchdog = null;
    function url() {
      const query = new URLSearchParams(params);
      query.set("token", Rasd.currentToken);
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      return scheme + "//" + window.location.host + path + "?" + query.toString();
    }
    function alive() {
      // The server sends a frame or heartbeat at least every few seconds; silence means dead.
      clearTimeout(watchdog);
      watchdog = setTimeout(function () { if (socket) socket.close(); }, 45000);
    }
    function connect() {
      onStatus("connecting");
      socket = new WebSocket(url());
      socket.onopen = function () { attempt = 0; alive(); onStatus("live"); };
      socket.onmessage = function (event) {
        alive();
        const frame = JSON.parse(event.data);
        if (frame.type === "error") {
          onStatus("refused: " + frame.message);
          if (frame.code === "unauthenticated") closedByUs = true;
          return;
        }
        onFrame(frame);
      };
      socket.onclose = function (event) {
        clearTimeout(watchdog);
        if (closedByUs || event.code === 4401 || event.code === 4403 || event.code === 4400) {
          onStatus(event.code === 4401 ? "token refused" : "closed (" + event.code + ")");
          return;
        }
        attempt += 1;
        const delay = Math.min(15000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
        onStatus("reconnecting");
        setTimeout(connect, delay);
      };
    }
    connect();
    return { close: function () { closedByUs = true; if (socket) socket.close(); } };
  }

  async function districts(map) {
    const response = await fetch("/static/districts.geojson");
    const data = await response.json();
    return L.geoJSON(data, {
      style: { color: "#5b4a8a", weight: 2, opacity: 0.8, fillOpacity: 0.04, dashArray: "6 4" },
      interactive: false,
      onEachFeature: function (feature, layer) {
        // The district's name in the page's language (label.district.*), else the outline's.
        const code = feature.properties.name;
        const name = window.RasdI18n ? RasdI18n.label("district", code) : code;
        layer.bindTooltip(name === code ? feature.properties.label : name, {
          permanent: true, direction: "center", className: "district-label", interactive: false,
        });
      },
    }).addTo(map);
  }

  function baseMap(element, config, options) {
    // Leaflet's own container stays left to right (it breaks under dir="rtl"); on a right-to-left
    // page its controls move to the reading side instead.
    const rtl = document.documentElement.dir === "rtl";
    const map = L.map(element, Object.assign({ zoomControl: false, minZoom: 10 }, options || {}));
    L.control.zoom({ position: rtl ? "topright" : "topleft" }).addTo(map);
    if (map.attributionControl) map.attributionControl.setPosition(rtl ? "bottomleft" : "bottomright");
    if (config.tile_url) {
      L.tileLayer(config.tile_url, {
        maxZoom: config.tile_max_zoom, attribution: config.tile_attribution,
      }).addTo(map);
    }
    return map;
  }

  /** How long ago, in the page's language. */
  function ago(ms) {
    return RasdI18n.ago(ms);
  }

  /** A connection state of live() ("live", "token refused", "refused: ...") in words. */
  function statusText(status) {
    const refused = /^refused: (.*)$/.exec(status);
    if (refused) return RasdI18n.t("common.status.refused", { message: refused[1] });
    const closed = /^closed \((\d+)\)$/.exec(status);
    if (closed) return RasdI18n.t("common.status.closed", { code: closed[1] });
    const key = "common.status." + status.replace(/ /g, "_");
    const text = RasdI18n.t(key);
    return text === key ? status : text;
  }

  function escape(text) {
    return String(text === null || text === undefined ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  const SEVERITY = { critical: 0, high: 1, medium: 2, low: 3 };

  /** Newest and most severe first. */
  function byUrgency(a, b) {
    const s = (SEVERITY[a.severity] ?? 9) - (SEVERITY[b.severity] ?? 9);
    return s !== 0 ? s : Date.parse(b.opened_at) - Date.parse(a.opened_at);
  }

  return {
    token, forgetToken, askToken, api, live, districts, baseMap, ago, statusText, escape, byUrgency,
    currentToken: null,
  };
})();
