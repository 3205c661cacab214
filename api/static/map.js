/* The operator's live map: vehicles from /ws/positions, lights from /api/v1/lights/compact,
   alerts from /ws/alerts, district outlines from the project's GeoJSON. */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const COLOURS = { on: "#f5c518", dimmed: "#b8860b", off: "#2f2f3a", faulty: "#d62828",
                    silent: "#a0a0b0" };
  const LIGHTS_REFRESH_MS = 60000;
  const statusEl = document.getElementById("status");
  const config = await (await fetch("/config.json")).json();
  Rasd.currentToken = Rasd.token() || await Rasd.askToken(t("map.login_prompt"));

  const map = Rasd.baseMap("map", config, { preferCanvas: true });
  map.setView([31.635, -8.0], 13);
  const outlines = await Rasd.districts(map);

  const lights = new LightsLayer(config.light_statuses, COLOURS).addTo(map);
  // A map needs no more than four frames a second (vehicles report every 10 s); the API's
  // faster default is for latency-sensitive clients. The glide spans about three frames.
  const FRAME_MS = Math.max(250, config.frame_ms);
  const vehicles = new VehiclesLayer({
    staleAfterS: config.stale_after_s, glideMs: Math.min(1000, FRAME_MS * 3),
  }).addTo(map);
  const trail = L.layerGroup().addTo(map);
  const complaints = new RasdComplaints.Layer(
    map, document.getElementById("complaints"), document.getElementById("complaint-count")
  ).start();
  const showComplaints = document.getElementById("show-complaints");
  showComplaints.addEventListener("input", () => complaints.setVisible(showComplaints.checked));
  const alerts = new Map();

  // -- filters ---------------------------------------------------------------------------------
  const showBus = document.getElementById("show-bus");
  const showTruck = document.getElementById("show-truck");
  const showStale = document.getElementById("show-stale");
  const routeInput = document.getElementById("route-filter");
  const showLights = document.getElementById("show-lights");
  const statusBox = document.getElementById("light-statuses");
  for (const name of config.light_statuses) {
    const label = document.createElement("label");
    label.innerHTML = '<input type="checkbox" checked data-status="' + name + '"> ' +
      "<span></span>" + Rasd.escape(RasdI18n.label("light", name));
    // Set through the CSSOM: the page's CSP refuses style attributes in markup.
    label.querySelector("span").style.background = COLOURS[name];
    statusBox.appendChild(label);
  }
  function applyFilters() {
    const routes = routeInput.value.split(",").map((r) => r.trim()).filter(Boolean);
    vehicles.filter = function (v) {
      if (v.fleet === "bus" && !showBus.checked) return false;
      if (v.fleet === "truck" && !showTruck.checked) return false;
      return routes.length === 0 || routes.includes(v.route);
    };
    vehicles.showStale = showStale.checked;
    vehicles.redraw();
    const statuses = [...statusBox.querySelectorAll("input:checked")].map((i) => i.dataset.status);
    lights.setVisible(statuses);
    if (showLights.checked && !map.hasLayer(lights)) lights.addTo(map);
    if (!showLights.checked && map.hasLayer(lights)) map.removeLayer(lights);
    countVehicles();
  }
  for (const el of [showBus, showTruck, showStale, showLights, routeInput]) {
    el.addEventListener("input", applyFilters);
  }
  statusBox.addEventListener("input", applyFilters);
  const districtSelect = document.getElementById("district-select");
  outlines.eachLayer(function (layer) {
    const option = document.createElement("option");
    option.value = layer.feature.properties.name;
    option.textContent = layer.feature.properties.label;
    districtSelect.appendChild(option);
  });
  districtSelect.addEventListener("change", function () {
    let target = null;
    outlines.eachLayer(function (layer) {
      if (layer.feature.properties.name === districtSelect.value) target = layer;
    });
    if (target) map.fitBounds(target.getBounds()); else map.setView([31.635, -8.0], 13);
  });

  function countVehicles() {
    document.getElementById("vehicle-count").textContent =
      t("map.vehicles", { count: vehicles.visibleVehicles().length });
  }

  // -- live vehicles -----------------------------------------------------------------------------
  let vehicleStatus = "connecting";
  let alertStatus = "connecting";
  function showStatus() {
    const live = vehicleStatus === "live" && alertStatus === "live";
    statusEl.textContent = live ? Rasd.statusText("live") : t("map.status_detail", {
      positions: Rasd.statusText(vehicleStatus), alerts: Rasd.statusText(alertStatus) });
    statusEl.className = "status" + (live ? " live" : "");
    if (vehicleStatus === "token refused") {
      Rasd.forgetToken();
      Rasd.askToken(t("map.login_refused")).then(() => location.reload());
    }
  }
  Rasd.live("/ws/positions", { interval_ms: FRAME_MS }, function (frame) {
    if (frame.type === "snapshot") vehicles.vehicles.clear();
    if (frame.vehicles) { vehicles.update(frame.vehicles); countVehicles(); }
  }, function (status) { vehicleStatus = status; showStatus(); });
  setInterval(function () { vehicles.redraw(); countVehicles(); }, 5000);  // staleness

  // -- lights --------------------------------------------------------------------------------------
  async function loadLights() {
    try {
      const data = await (await Rasd.api("/api/v1/lights/compact")).json();
      lights.setData(data);
      document.getElementById("light-counts").textContent = t("map.lights_count", {
        count: data.ids.length,
        detail: Object.entries(data.counts)
          .map(([k, v]) => RasdI18n.number(v) + " " + RasdI18n.label("light", k)).join(RasdI18n.rtl ? "، " : ", "),
      });
    } catch (error) {
      document.getElementById("light-counts").textContent = t("map.lights_error", { message: error.message });
    }
  }
  loadLights();
  setInterval(loadLights, LIGHTS_REFRESH_MS);

  // -- clicks: a vehicle's trail, or a light's state ------------------------------------------------
  map.on("click", async function (event) {
    const vehicle = vehicles.nearest(event.containerPoint, 14);
    trail.clearLayers();
    if (vehicle) {
      vehicles.selected = vehicle.id;
      vehicles.redraw();
      const end = new Date();
      const start = new Date(end.getTime() - 30 * 60000);
      const popup = L.popup().setLatLng([vehicle.lat, vehicle.lon]).setContent(
        "<b>" + Rasd.escape(vehicle.id) + "</b> " + Rasd.escape(RasdI18n.label("fleet", vehicle.fleet)) +
        (vehicle.route ? " · " + Rasd.escape(t("map.route", { route: vehicle.route })) : "") + "<br>" +
        (vehicle.speed !== null && vehicle.speed !== undefined ?
          Rasd.escape(t("map.speed", { speed: RasdI18n.number(vehicle.speed) })) + " · " : "") +
        Rasd.ago(Date.now() - vehicle.tsMs)).openOn(map);
      try {
        const params = new URLSearchParams({ start: start.toISOString(), end: end.toISOString(),
                                             max_points: "500", format: "geojson" });
        const geo = await (await Rasd.api("/api/v1/vehicles/" + encodeURIComponent(vehicle.id) +
                                          "/track?" + params)).json();
        L.geoJSON(geo, { style: { color: "#f3a712", weight: 4, opacity: 0.85 } }).addTo(trail);
        const geometry = geo.features.length ? geo.features[0].geometry : null;
        window.rasd.trailPoints = !geometry ? 0 :
          (geometry.type === "Point" ? 1 : geometry.coordinates.length);
      } catch (error) {
        popup.setContent(popup.getContent() + '<br><span class="error">' +
                         Rasd.escape(error.message) + "</span>");
      }
      return;
    }
    vehicles.selected = null;
    vehicles.redraw();
    if (!map.hasLayer(lights)) return;
    const light = lights.nearest(event.containerPoint, 8);
    if (!light) return;
    const popup = L.popup().setLatLng([light.lat, light.lon])
      .setContent("<b>" + Rasd.escape(light.id) + "</b> " +
                  Rasd.escape(RasdI18n.label("light", light.status))).openOn(map);
    try {
      const d = await (await Rasd.api("/api/v1/lights/" + encodeURIComponent(light.id))).json();
      popup.setContent("<b>" + Rasd.escape(d.id) + "</b> " +
        Rasd.escape(RasdI18n.label("light", d.status)) + "<br>" +
        Rasd.escape(d.label || "") + " · " + Rasd.escape(t("map.circuit", { circuit: d.circuit || "?" })) +
        "<br>" + Rasd.escape(d.last_reading ?
          t("map.last_reading", { ago: Rasd.ago(Date.now() - Date.parse(d.last_reading)) }) +
          (d.dim_pct !== null ? " · " + t("map.dim", { pct: RasdI18n.number(d.dim_pct) }) : "") :
          t("map.no_reading")) +
        (d.open_faults.length ? "<br>" + Rasd.escape(t("map.faults", {
          faults: d.open_faults.map((f) => RasdI18n.label("kind", f.fault)).join(", ") })) : ""));
    } catch (error) { /* the short popup stays */ }
  });

  // -- alerts --------------------------------------------------------------------------------------
  const alertList = document.getElementById("alerts");
  function renderAlerts() {
    const open = [...alerts.values()].filter((a) => a.state !== "resolved").sort(Rasd.byUrgency);
    document.getElementById("alert-count").textContent = "(" + RasdI18n.number(open.length) + ")";
    if (!open.length) {
      alertList.innerHTML = '<p class="empty">' + Rasd.escape(t("common.none")) + "</p>";
      return;
    }
    alertList.innerHTML = open.slice(0, 200).map((a) =>
      '<div class="alert ' + a.severity + '" data-id="' + a.alert_id + '">' +
      '<span class="badge ' + a.severity + '">' + Rasd.escape(RasdI18n.label("severity", a.severity)) +
      '</span> <b data-kind="' + Rasd.escape(a.kind) + '">' +
      Rasd.escape(RasdI18n.label("kind", a.kind)) + "</b> " + Rasd.escape(a.device_id || a.asset_key) +
      '<div class="meta">' + Rasd.escape(a.district || "") + " · " +
      Rasd.escape(RasdI18n.label("state", a.state)) + " · " +
      Rasd.ago(Date.now() - Date.parse(a.opened_at)) + "</div></div>").join("");
  }
  alertList.addEventListener("click", function (event) {
    const card = event.target.closest(".alert");
    const a = card && alerts.get(Number(card.dataset.id));
    if (a && a.lat !== null && a.lon !== null) map.flyTo([a.lat, a.lon], 17);
  });
  Rasd.live("/ws/alerts", {}, function (frame) {
    if (frame.type === "snapshot") {
      alerts.clear();
      for (const a of frame.alerts) alerts.set(a.alert_id, a);
    } else if (frame.type === "alert" && frame.alert) {
      alerts.set(frame.alert.alert_id, frame.alert);
    } else {
      return;
    }
    renderAlerts();
  }, function (status) { alertStatus = status; showStatus(); });
  setInterval(renderAlerts, 30000);

  applyFilters();
  // For tests and the console: the live state behind the canvas.
  window.rasd = { map, vehicles, lights, alerts, complaints, trailPoints: 0,
                  screenPoint: (id) => vehicles.screenPoint(id) };
})();
