/* The crew board: unresolved alerts of the crew's districts from /ws/alerts, most severe and
   newest first; acknowledge and resolve with a note; the selected asset on a small map. */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const label = RasdI18n.label;
  const config = await (await fetch("/config.json")).json();
  Rasd.currentToken = Rasd.token() || await Rasd.askToken(t("crew.login_prompt"));
  const alerts = new Map();
  const notes = new Map();  // alert id -> draft note, kept across re-renders
  let selected = null;

  const map = Rasd.baseMap("asset-map", config);
  map.setView([31.635, -8.0], 12);
  await Rasd.districts(map);
  const marker = L.circleMarker([31.635, -8.0], { radius: 10, color: "#d62828", weight: 3 });
  // Citizens' complaints of the crew's districts: on the small map, and counted on each card.
  const complaints = new RasdComplaints.Layer(
    map, document.getElementById("complaints"), document.getElementById("complaint-count")
  );
  let complaintsByAlert = new Map();
  async function loadComplaints() {
    await complaints.refresh();
    complaintsByAlert = RasdComplaints.byAlert([...complaints.items.values()]);
    render();
  }
  setInterval(loadComplaints, RasdComplaints.REFRESH_MS);

  const list = document.getElementById("alerts");
  const statusEl = document.getElementById("status");
  const errorEl = document.getElementById("action-error");

  function card(a) {
    const note = notes.get(a.alert_id) || "";
    const buttons = (a.state === "open" ?
      '<button data-action="acknowledge">' + Rasd.escape(t("crew.acknowledge")) + "</button>" : "") +
      '<button data-action="resolve">' + Rasd.escape(t("crew.resolve")) + "</button>";
    return '<div class="alert ' + a.severity + (a.alert_id === selected ? " selected" : "") +
      '" data-id="' + a.alert_id + '" data-state="' + a.state + '">' +
      '<span class="badge ' + a.severity + '">' + Rasd.escape(label("severity", a.severity)) + "</span> " +
      '<span class="state">' + Rasd.escape(label("state", a.state)) + '</span> <b data-kind="' +
      Rasd.escape(a.kind) + '">' + Rasd.escape(label("kind", a.kind)) + "</b> " +
      Rasd.escape(a.device_id || a.asset_key) +
      '<div class="meta">' + Rasd.escape(a.summary) + "<br>" + Rasd.escape(a.district || "") +
      " · " + Rasd.escape(t("crew.opened", { ago: Rasd.ago(Date.now() - Date.parse(a.opened_at)) })) +
      (a.assignee ? " · " + Rasd.escape(t("crew.assigned", { name: a.assignee })) : "") +
      (a.acknowledged_by ? " · " + Rasd.escape(t("crew.acknowledged_by", { name: a.acknowledged_by })) : "") +
      ((complaintsByAlert.get(a.alert_id) || []).length ?
        '<br><span class="complaints-count">' +
        Rasd.escape(t("crew.complaints", { count: complaintsByAlert.get(a.alert_id).length })) +
        "</span>" : "") + "</div>" +
      '<textarea rows="2" placeholder="' + Rasd.escape(t("crew.note_placeholder")) + '" data-note>' +
      Rasd.escape(note) +
      "</textarea>" + buttons + "</div>";
  }

  function render() {
    const open = [...alerts.values()].filter((a) => a.state !== "resolved").sort(Rasd.byUrgency);
    document.getElementById("alert-count").textContent = "(" + RasdI18n.number(open.length) + ")";
    const focused = document.activeElement && document.activeElement.closest &&
      document.activeElement.closest(".alert");
    if (focused) return;  // never re-render under a crew member typing a note
    list.innerHTML = open.length ? open.map(card).join("") :
      '<p class="empty">' + Rasd.escape(t("common.none")) + "</p>";
  }

  function select(a) {
    selected = a.alert_id;
    if (a.lat !== null && a.lon !== null) {
      marker.setLatLng([a.lat, a.lon]).addTo(map);
      map.setView([a.lat, a.lon], 16);
    }
    for (const el of list.querySelectorAll(".alert")) {
      el.classList.toggle("selected", Number(el.dataset.id) === selected);
    }
  }

  list.addEventListener("input", function (event) {
    const el = event.target.closest(".alert");
    if (el && event.target.dataset.note !== undefined) {
      notes.set(Number(el.dataset.id), event.target.value);
    }
  });
  list.addEventListener("focusout", function () { setTimeout(render, 0); });
  list.addEventListener("click", async function (event) {
    const el = event.target.closest(".alert");
    if (!el) return;
    const a = alerts.get(Number(el.dataset.id));
    if (!a) return;
    select(a);
    const action = event.target.dataset && event.target.dataset.action;
    if (!action) return;
    event.target.disabled = true;
    errorEl.textContent = "";
    try {
      const note = notes.get(a.alert_id) || null;
      const answer = await (await Rasd.api("/api/v1/alerts/" + a.alert_id + "/" + action,
                                           { json: { note: note } })).json();
      alerts.set(answer.alert_id, answer);
      notes.delete(answer.alert_id);
      document.activeElement.blur();
      render();
    } catch (error) {
      errorEl.textContent = t("crew.action_failed",
                              { action: label("action", action), id: a.alert_id, message: error.message });
      event.target.disabled = false;
    }
  });

  Rasd.live("/ws/alerts", {}, function (frame) {
    if (frame.type === "snapshot") {
      alerts.clear();
      for (const a of frame.alerts) alerts.set(a.alert_id, a);
      const districts = [...new Set(frame.alerts.map((a) => a.district).filter(Boolean))];
      document.getElementById("scope").textContent = districts.length ?
        t("crew.districts", { list: districts.join(", ") }) : "";
    } else if (frame.type === "alert" && frame.alert) {
      alerts.set(frame.alert.alert_id, frame.alert);
    } else {
      return;
    }
    render();
  }, function (status) {
    statusEl.textContent = Rasd.statusText(status);
    statusEl.className = "status" + (status === "live" ? " live" : "");
    if (status === "token refused") {
      Rasd.forgetToken();
      Rasd.askToken(t("crew.login_refused")).then(() => location.reload());
    }
  });
  setInterval(render, 30000);
  loadComplaints();
  window.rasdCrew = { alerts, map, complaints, select: (id) => alerts.has(id) && select(alerts.get(id)) };
})();
