/* The stop search (/stops): every boarding stop from /stops.json, filtered by name as one
   types (accents and case ignored), on a small map; "stops near me" sorts them by distance
   from the phone's position when the browser allows it. Each result and marker opens the
   stop's next-bus page. No token. */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const LISTED = 12;
  const input = document.getElementById("q");
  const results = document.getElementById("results");
  const found = document.getElementById("found");
  const locate = document.getElementById("locate");
  const state = { stops: [], here: null };
  window.rasdStops = state;

  const fold = (text) => String(text).normalize("NFD").replace(/[\u0300-\u036f]/g, "")
    .toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
  const href = (stop) => "/stops/" + encodeURIComponent(stop.stop_id);

  function metres(a, b) {
    const rad = Math.PI / 180;
    const x = (b.lon - a.lon) * rad * Math.cos((a.lat + b.lat) / 2 * rad);
    const y = (b.lat - a.lat) * rad;
    return 6371000 * Math.hypot(x, y);
  }

  function item(stop) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = href(stop);
    link.dataset.stopId = stop.stop_id;
    const name = document.createElement("span");
    name.className = "name";
    name.dir = "auto";
    name.textContent = stop.name;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = t("stop.lines", { lines: stop.routes.join(" · ") });
    if (state.here) {
      meta.textContent += " — " + t("stop.search.distance",
        { m: RasdI18n.number(Math.round(metres(state.here, stop) / 10) * 10) });
    }
    link.append(name, meta);
    li.append(link);
    return li;
  }

  function show() {
    const words = fold(input.value).split(" ").filter(Boolean);
    let chosen = state.stops.filter((s) => words.every((w) => s.folded.includes(w)));
    if (state.here) {
      chosen = chosen.slice().sort((a, b) => metres(state.here, a) - metres(state.here, b));
    } else if (!words.length) {
      chosen = [];  // nothing asked yet: the map shows them all
    }
    results.replaceChildren(...chosen.slice(0, LISTED).map(item));
    found.textContent = words.length && !chosen.length ? t("stop.search.none")
      : t("stop.search.count", { count: words.length || state.here ? chosen.length : state.stops.length });
  }

  input.addEventListener("input", show);
  document.getElementById("search").addEventListener("submit", function (event) {
    event.preventDefault();
    const first = results.querySelector("a");
    if (first) window.location.assign(first.href);
  });

  const [config, stops] = await Promise.all([
    fetch("/config.json").then((r) => r.json()).catch(() => ({})),
    fetch("/stops.json").then((r) => (r.ok ? r.json() : [])).catch(() => null),
  ]);
  if (stops === null) {
    found.textContent = t("stop.failed");
    found.classList.add("bad");
    document.body.dataset.ready = "true";
    return;
  }
  state.stops = stops.map((s) => Object.assign({ folded: fold(s.name) }, s));

  const map = Rasd.baseMap("map", config, { zoomSnap: 0.5 });
  state.map = map;
  const markers = state.stops.map(function (stop) {
    const marker = L.circleMarker([stop.lat, stop.lon], {
      radius: 6, color: "#0d47a1", weight: 2, fillColor: "#1565c0", fillOpacity: 0.8,
    });
    marker.bindTooltip(stop.name, { direction: "top" });
    marker.on("click", function () { window.location.assign(href(stop)); });
    return marker.addTo(map);
  });
  if (markers.length) {
    map.fitBounds(L.featureGroup(markers).getBounds(), { padding: [16, 16] });
  } else {
    map.setView([31.6295, -7.9811], 13);  // Marrakech
  }

  if (navigator.geolocation) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (position) {
        state.here = { lat: position.coords.latitude, lon: position.coords.longitude };
        input.value = "";
        show();
        map.setView([state.here.lat, state.here.lon], 16);
      }, function () {
        found.textContent = t("stop.search.no_position");
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }
  show();
  document.body.dataset.ready = "true";
})();
