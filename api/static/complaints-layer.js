/* Citizens' complaints on the operator's map and the crew board: open complaints from
   /api/v1/complaints (with what the telemetry says about each), refreshed every minute. */
"use strict";

window.RasdComplaints = (function () {
  const VERDICT_COLOURS = { confirms: "#d62828", refutes: "#2e9e44", mixed: "#f3a712",
                            unknown: "#7a5cc4" };
  const REFRESH_MS = 60000;

  async function fetchOpen() {
    const params = new URLSearchParams({ status: "open", limit: "1000" });
    return (await (await Rasd.api("/api/v1/complaints?" + params)).json()).items;
  }

  const t = (key, values) => RasdI18n.t(key, values);
  const label = (group, code) => RasdI18n.label(group, code);

  function describe(c) {
    return "<b>" + Rasd.escape(c.service_name) + "</b> #" + c.complaint_id + "<br>" +
      Rasd.escape(label("complaint", c.status)) + " · " +
      Rasd.escape(t("complaints.telemetry", { verdict: label("verdict", c.verdict) })) + " · " +
      Rasd.escape(label("link", c.link_state)) +
      (c.alert_id ? " · " + Rasd.escape(t("complaints.alert", { id: c.alert_id })) : "") + "<br>" +
      '<span class="meta">' + Rasd.ago(Date.now() - Date.parse(c.requested_at)) +
      (c.address ? " · " + Rasd.escape(c.address) : "") + "</span>" +
      (c.description ? "<br>" + Rasd.escape(c.description).slice(0, 200) : "");
  }

  function evidenceLines(c) {
    return (c.evidence || []).map(function (e) {
      const reason = e.details && e.details.reason ? " (" + Rasd.escape(e.details.reason) + ")" : "";
      return "<br>" + Rasd.escape(label("evidence", e.kind)) + " " + Rasd.escape(e.asset_key || "") +
        ": " + Rasd.escape(label("verdict", e.verdict)) + reason;
    }).join("");
  }

  /** A Leaflet layer of complaint markers (triangles), coloured by the telemetry's verdict. */
  class Layer {
    constructor(map, listElement, countElement) {
      this.map = map;
      this.group = L.layerGroup().addTo(map);
      this.list = listElement;
      this.count = countElement;
      this.items = new Map();
      if (this.list) {
        this.list.addEventListener("click", (event) => {
          const card = event.target.closest(".complaint");
          const c = card && this.items.get(Number(card.dataset.id));
          if (c && c.lat !== null) this.map.flyTo([c.lat, c.lon], 17);
        });
      }
    }

    async refresh() {
      try {
        const items = await fetchOpen();
        this.items = new Map(items.map((c) => [c.complaint_id, c]));
        this.draw();
      } catch (error) {
        if (this.count) this.count.textContent = "(" + error.message + ")";
      }
    }

    draw() {
      this.group.clearLayers();
      const items = [...this.items.values()];
      for (const c of items) {
        if (c.lat === null || c.lon === null) continue;
        // An element coloured through the CSSOM: the page's CSP refuses style attributes.
        const triangle = document.createElement("span");
        triangle.style.borderBottomColor = VERDICT_COLOURS[c.verdict] || "#555";
        const icon = L.divIcon({ className: "complaint-icon", html: triangle, iconSize: [14, 12] });
        const marker = L.marker([c.lat, c.lon], { icon: icon, title: c.service_name });
        marker.bindPopup(describe(c));
        marker.on("popupopen", async function () {
          try {
            const full = await (await Rasd.api("/api/v1/complaints/" + c.complaint_id)).json();
            marker.setPopupContent(describe(full) + evidenceLines(full));
          } catch (error) { /* the short popup stays */ }
        });
        marker.addTo(this.group);
      }
      if (this.count) this.count.textContent = "(" + RasdI18n.number(items.length) + ")";
      if (this.list) {
        this.list.innerHTML = items.length ? items.slice(0, 100).map((c) =>
          '<div class="complaint" data-id="' + c.complaint_id + '">' +
          '<span class="verdict ' + c.verdict + '">' + Rasd.escape(label("verdict", c.verdict)) +
          "</span> " + describe(c) + "</div>").join("") :
          '<p class="empty">' + Rasd.escape(t("common.none")) + "</p>";
      }
    }

    setVisible(visible) {
      if (visible && !this.map.hasLayer(this.group)) this.group.addTo(this.map);
      if (!visible && this.map.hasLayer(this.group)) this.map.removeLayer(this.group);
    }

    start() {
      this.refresh();
      setInterval(() => this.refresh(), REFRESH_MS);
      return this;
    }
  }

  /** Open complaints by alert id (for the crew board's cards). */
  function byAlert(items) {
    const out = new Map();
    for (const c of items) {
      if (c.alert_id === null) continue;
      if (!out.has(c.alert_id)) out.set(c.alert_id, []);
      out.get(c.alert_id).push(c);
    }
    return out;
  }

  return { Layer, fetchOpen, byAlert, describe, REFRESH_MS };
})();
