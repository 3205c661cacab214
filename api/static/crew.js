/* The crews' app: the work orders of the crew's districts, nearest first from the phone's
   position; an order's asset on a small map with a route link; start and complete (parts,
   minutes, note, photos resized here); a QR code or an asset id opens its order. Every action
   goes through the outbox (crew-outbox.js) with an idempotency key, so it survives no network
   and is applied once. Live changes come on /ws/alerts as work_order frames. */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const label = RasdI18n.label;
  const ORDERS_URL = "/api/v1/work-orders?state=open&state=assigned&state=in_progress&limit=500";
  const SYNC_EVERY_MS = 30000;
  // Photos: the server takes 4 MiB each; a phone on a slow link and the outbox want far less.
  const PHOTO_MAX_SIDE = 1600;
  const PHOTO_MAX_BYTES = 1024 * 1024;
  const MAX_PHOTOS = 4;
  const ASSET_IN_URL = /\/a\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(?:[/?#]|$)/;
  const ASSET_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

  if ("serviceWorker" in navigator) {
    // The app shell, cached so the app opens with no network (crew-sw.js).
    navigator.serviceWorker.register("/crew-sw.js", { scope: "/crew" }).catch(function () {});
  }
  let config = {};
  try {
    config = await (await fetch("/config.json")).json();
  } catch (offline) { /* the service worker's copy, else no tiles: the outlines still draw */ }
  Rasd.currentToken = Rasd.token() || await Rasd.askToken(t("crew.login_prompt"));

  const orders = new Map();
  let queued = [];
  let position = null;
  let selected = null;
  let photos = [];  // {blob, url} of the order being completed
  const el = (id) => document.getElementById(id);
  const list = el("orders");

  // ---- the orders ----------------------------------------------------------------------

  /** The state the crew sees: the server's, moved on by the actions still in the outbox. */
  function stateOf(order) {
    let state = order.state;
    for (const entry of queued) {
      if (entry.order_id !== order.work_order_id || entry.state === "failed") continue;
      if (entry.action === "start") state = "in_progress";
      if (entry.action === "complete") state = "done";
    }
    return state;
  }

  function queuedFor(order) {
    return queued.filter((e) => e.order_id === order.work_order_id && e.state !== "failed").length;
  }

  function metres(order) {
    if (!position || order.lat === null || order.lon === null) return null;
    const rad = Math.PI / 180;
    const dLat = (order.lat - position.lat) * rad;
    const dLon = (order.lon - position.lon) * rad;
    const a = Math.sin(dLat / 2) ** 2 +
      Math.cos(position.lat * rad) * Math.cos(order.lat * rad) * Math.sin(dLon / 2) ** 2;
    return 6371000 * 2 * Math.asin(Math.sqrt(a));
  }

  /** Nearest first from the phone's position; without one, by district, oldest fault first. */
  function ordered() {
    const items = [...orders.values()].filter((o) => o.state !== "cancelled");
    return items.sort(function (a, b) {
      if (position) {
        const da = metres(a);
        const db = metres(b);
        if (da !== db) return (da === null ? Infinity : da) - (db === null ? Infinity : db);
      } else {
        const d = String(a.district || "").localeCompare(String(b.district || ""));
        if (d !== 0) return d;
      }
      return Date.parse(a.opened_at) - Date.parse(b.opened_at);
    });
  }

  function distanceText(m) {
    if (m === null) return "";
    return m < 1000 ? t("crew.distance.m", { m: RasdI18n.number(Math.round(m / 10) * 10) }) :
      t("crew.distance.km", { km: RasdI18n.number(m / 1000, { maximumFractionDigits: 1 }) });
  }

  function card(o) {
    const state = stateOf(o);
    const waiting = queuedFor(o);
    const where = [o.asset_id || o.device_id || o.circuit,
                   o.district ? label("district", o.district) : "", distanceText(metres(o)),
                   t("crew.opened", { ago: Rasd.ago(Date.now() - Date.parse(o.opened_at)) })];
    return '<li class="order state-' + Rasd.escape(state) + (o.work_order_id === selected ? " selected" : "") +
      '" data-id="' + o.work_order_id + '" data-state="' + Rasd.escape(state) + '">' +
      '<b data-kind="' + Rasd.escape(o.kind) + '">' + Rasd.escape(label("kind", o.kind)) + "</b> " +
      '<span class="state">' + Rasd.escape(label("order", state)) + "</span>" +
      (waiting ? '<span class="pending-badge">' + Rasd.escape(t("crew.waiting", { count: waiting })) +
        "</span>" : "") +
      '<div class="meta">#' + o.work_order_id + " · " +
      where.filter(Boolean).map(Rasd.escape).join(" · ") + "</div>" +
      '<div class="summary">' + Rasd.escape(o.summary) + "</div></li>";
  }

  function render() {
    const items = ordered();
    el("order-count").textContent = "(" + RasdI18n.number(items.length) + ")";
    list.innerHTML = items.length ? items.map(card).join("") :
      '<li class="empty">' + Rasd.escape(t("common.none")) + "</li>";
    if (selected !== null && orders.has(selected)) renderDetail(orders.get(selected));
  }

  function setOrders(items) {
    orders.clear();
    for (const o of items) orders.set(o.work_order_id, o);
    render();
  }

  function keep(order) {
    const copy = Object.assign({}, order);
    for (const heavy of ["steps", "alerts", "parts", "photos"]) delete copy[heavy];
    orders.set(copy.work_order_id, copy);
  }

  let saving = null;
  function save() {
    // The list as last seen, for the next start without network.
    clearTimeout(saving);
    saving = setTimeout(function () {
      RasdOutbox.cacheSet("orders", { items: [...orders.values()], at: new Date().toISOString() });
    }, 300);
  }

  async function loadOrders() {
    try {
      const page = await (await Rasd.api(ORDERS_URL)).json();
      setOrders(page.items);
      el("order-source").textContent = "";
      save();
      return true;
    } catch (error) {
      if (error.status === 401) return refused();
      const cached = await RasdOutbox.cacheGet("orders");
      if (cached) {
        if (!orders.size) setOrders(cached.items);
        el("order-source").textContent = t("crew.cached", {
          time: new Date(cached.at).toLocaleTimeString(RasdI18n.formatLocale,
                                                       { hour: "2-digit", minute: "2-digit" }),
        });
      }
      return false;
    }
  }

  function refused() {
    Rasd.forgetToken();
    Rasd.askToken(t("crew.login_refused")).then(() => location.reload());
    return false;
  }

  // ---- one order -----------------------------------------------------------------------

  let map = null;
  let marker = null;

  function ensureMap() {
    if (map) return;
    map = Rasd.baseMap("asset-map", config);
    map.setView([31.635, -8.0], 12);
    Rasd.districts(map).catch(function () { /* offline and never cached */ });
    marker = L.circleMarker([31.635, -8.0], { radius: 10, color: "#d62828", weight: 3 });
  }

  function routeLink(o) {
    const a = el("route");
    a.hidden = o.lat === null || o.lon === null;
    if (a.hidden) return;
    // iPhones open maps.apple.com in their Maps app; Android opens geo: in the chosen map app.
    const apple = /iPad|iPhone|iPod/.test(navigator.userAgent) ||
      (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
    const name = encodeURIComponent(o.asset_id || o.device_id || "");
    a.href = apple ? "https://maps.apple.com/?daddr=" + o.lat + "," + o.lon :
      "geo:" + o.lat + "," + o.lon + "?q=" + o.lat + "," + o.lon + "(" + name + ")";
  }

  function row(term, value) {
    return value === null || value === undefined || value === "" ? "" :
      "<dt>" + Rasd.escape(term) + "</dt><dd>" + Rasd.escape(value) + "</dd>";
  }

  // The order and state the action area was drawn for: redrawn only when the state changes,
  // never under the crew's fingers (a live frame of another order changes nothing there).
  let drawn = null;

  function renderDetail(o) {
    const state = stateOf(o);
    el("detail").innerHTML = "<h2>" + Rasd.escape(label("kind", o.kind)) + " · #" + o.work_order_id +
      "</h2><dl>" + row(t("crew.field.state"), label("order", state)) +
      row(t("crew.field.asset"), o.asset_id) + row(t("crew.field.light"), o.device_id) +
      row(t("crew.field.circuit"), o.circuit) + row(t("crew.field.district"), o.district ? label("district", o.district) : "") +
      row(t("crew.field.assignee"), o.assignee) + row(t("crew.field.summary"), o.summary) +
      row(t("crew.field.distance"), distanceText(metres(o))) + "</dl>";
    routeLink(o);
    const key = o.work_order_id + ":" + state;
    if (drawn === key) return;
    drawn = key;
    const actions = el("actions");
    if (state === "assigned") {
      actions.innerHTML = '<button id="start" type="button">' + Rasd.escape(t("crew.start")) + "</button>";
      el("start").onclick = function () { act(o, "start", {}); };
    } else if (state === "in_progress") {
      actions.innerHTML = completeForm();
      wireCompleteForm(o);
    } else if (state === "open") {
      actions.innerHTML = '<p class="note">' + Rasd.escape(t("crew.not_assigned")) + "</p>";
    } else {
      actions.innerHTML = '<p class="note">' + Rasd.escape(
        queuedFor(o) ? t("crew.done_waiting") : t("crew.done")) + "</p>";
    }
  }

  function completeForm() {
    return '<form id="complete-form"><h3>' + Rasd.escape(t("crew.complete.heading")) + "</h3>" +
      '<div id="parts"></div><button id="add-part" type="button" class="secondary">' +
      Rasd.escape(t("crew.part.add")) + "</button>" +
      '<label><span>' + Rasd.escape(t("crew.complete.minutes")) + "</span>" +
      '<input id="minutes" type="number" inputmode="numeric" min="0" max="100000" step="1"></label>' +
      '<label><span>' + Rasd.escape(t("crew.complete.note")) + "</span>" +
      '<textarea id="complete-note" rows="3"></textarea></label>' +
      '<label><span>' + Rasd.escape(t("crew.complete.photo")) + "</span>" +
      '<input id="photo" type="file" accept="image/*" capture="environment"></label>' +
      '<div id="photos" class="photos"></div><p id="photo-error" class="error"></p>' +
      '<button id="complete" type="submit">' + Rasd.escape(t("crew.complete.submit")) + "</button></form>";
  }

  function addPart() {
    const fieldset = el("part-row").content.firstElementChild.cloneNode(true);
    for (const mark of fieldset.querySelectorAll("[data-i18n]")) mark.textContent = t(mark.dataset.i18n);
    fieldset.querySelector("[data-remove-part]").onclick = function () { fieldset.remove(); };
    el("parts").append(fieldset);
    fieldset.querySelector("input").focus();
  }

  function showPhotos() {
    el("photos").replaceChildren(...photos.map(function (p) {
      const img = document.createElement("img");
      img.src = p.url;
      img.alt = t("crew.complete.photo");
      return img;
    }));
    el("photo").disabled = photos.length >= MAX_PHOTOS;
  }

  function wireCompleteForm(o) {
    for (const p of photos) URL.revokeObjectURL(p.url);
    photos = [];
    el("add-part").onclick = addPart;
    el("photo").onchange = async function (event) {
      const file = event.target.files && event.target.files[0];
      event.target.value = "";
      if (!file) return;
      el("photo-error").textContent = "";
      try {
        const blob = await shrink(file);
        photos.push({ blob: blob, url: URL.createObjectURL(blob) });
        showPhotos();
      } catch (error) {
        el("photo-error").textContent = t("crew.photo.unreadable");
      }
    };
    el("complete-form").onsubmit = async function (event) {
      event.preventDefault();
      const parts = [...el("parts").querySelectorAll(".part")].map(function (f) {
        const value = (name) => f.querySelector("[name=" + name + "]").value.trim() || null;
        return { part: value("part"), removed_serial: value("removed_serial"),
                 installed_serial: value("installed_serial") };
      }).filter((p) => p.part);
      const minutes = el("minutes").value;
      const body = {
        note: el("complete-note").value.trim() || null,
        crew_minutes: minutes === "" ? null : Math.max(0, Math.round(Number(minutes))),
        parts: parts,
        photos: await Promise.all(photos.map((p) => base64(p.blob))),
      };
      el("complete").disabled = true;
      await act(o, "complete", body);
    };
  }

  /** A photo redrawn at most PHOTO_MAX_SIDE pixels wide or high, as a JPEG small enough. */
  async function shrink(file) {
    const url = URL.createObjectURL(file);
    try {
      const img = await new Promise(function (resolve, reject) {
        const image = new Image();
        image.onload = function () { resolve(image); };
        image.onerror = reject;
        image.src = url;
      });
      const scale = Math.min(1, PHOTO_MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
      canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff";  // a transparent PNG becomes a white-backed JPEG
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      for (const quality of [0.82, 0.7, 0.55, 0.4, 0.3]) {
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
        if (blob && blob.size <= PHOTO_MAX_BYTES) return blob;
      }
      throw new Error("photo too large");
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  function base64(blob) {
    return new Promise(function (resolve, reject) {
      const reader = new FileReader();
      reader.onload = function () { resolve(String(reader.result).replace(/^data:[^,]*,/, "")); };
      reader.onerror = function () { reject(reader.error); };
      reader.readAsDataURL(blob);
    });
  }

  function select(id) {
    const o = orders.get(id);
    if (!o) return false;
    selected = id;
    drawn = null;
    el("detail-view").hidden = false;
    document.body.classList.add("detail-open");
    ensureMap();
    map.invalidateSize();
    if (o.lat !== null && o.lon !== null) {
      marker.setLatLng([o.lat, o.lon]).addTo(map);
      map.setView([o.lat, o.lon], 17);
    } else {
      marker.remove();
    }
    render();
    window.scrollTo(0, 0);
    return true;
  }

  function back() {
    selected = null;
    drawn = null;
    el("detail-view").hidden = true;
    document.body.classList.remove("detail-open");
    render();
  }

  list.addEventListener("click", function (event) {
    const item = event.target.closest(".order");
    if (item) select(Number(item.dataset.id));
  });
  el("back").onclick = back;

  // ---- the outbox ----------------------------------------------------------------------

  async function act(order, action, body) {
    await RasdOutbox.add({
      order_id: order.work_order_id, action: action, body: body,
      asset: order.asset_id || order.device_id || "",
    });
    await showOutbox();
    render();
    sync();
  }

  function send(entry) {
    return fetch("/api/v1/work-orders/" + entry.order_id + "/" + entry.action, {
      method: "POST",
      headers: {
        Authorization: "Bearer " + Rasd.currentToken,
        "Content-Type": "application/json",
        "Idempotency-Key": entry.key,
      },
      body: JSON.stringify(entry.body),
    });
  }

  async function showOutbox() {
    queued = await RasdOutbox.all();
    const waiting = queued.filter((e) => e.state !== "failed").length;
    const failed = queued.length - waiting;
    el("pending").textContent = queued.length ?
      t("crew.outbox.count", { count: waiting }) +
      (failed ? " · " + t("crew.outbox.failed", { count: failed }) : "") :
      t("crew.outbox.empty");
    el("outbox-bar").classList.toggle("clear", queued.length === 0);
    el("outbox-bar").dataset.pending = String(waiting);
    const items = el("outbox-list");
    items.hidden = queued.length === 0;
    items.innerHTML = queued.map(function (e) {
      return '<li class="' + Rasd.escape(e.state) + '" data-seq="' + e.seq + '" data-state="' +
        Rasd.escape(e.state) + '">' + Rasd.escape(label("action", e.action)) + " · #" + e.order_id +
        (e.asset ? " · " + Rasd.escape(e.asset) : "") + " · " +
        Rasd.escape(label("outbox", e.state)) + (e.error ? " · " + Rasd.escape(e.error) : "") +
        (e.state === "failed" ? '<button type="button" class="secondary" data-discard="' + e.seq +
          '">' + Rasd.escape(t("crew.outbox.discard")) + "</button>" : "") + "</li>";
    }).join("");
  }

  el("outbox-list").addEventListener("click", async function (event) {
    const seq = event.target.dataset && event.target.dataset.discard;
    if (!seq) return;
    await RasdOutbox.remove(Number(seq));
    await showOutbox();
    render();
  });

  let syncs = 0;
  async function sync() {
    el("sync-error").textContent = "";
    const result = await RasdOutbox.replay(send, async function (entry, answer) {
      if (answer) keep(answer);
      await showOutbox();
      if (entry) { render(); save(); }
    });
    syncs += 1;
    if (result.stopped === "token") refused();
    else if (result.stopped === "server") el("sync-error").textContent = t("crew.sync_later");
    showNetwork();
    return result;
  }

  el("sync-now").onclick = async function () {
    await sync();
    await loadOrders();
  };

  function showNetwork() {
    const online = navigator.onLine;
    el("network").textContent = online ? "" : t("crew.offline");
    el("network").classList.toggle("offline", !online);
  }
  window.addEventListener("online", function () { showNetwork(); sync().then(loadOrders); });
  window.addEventListener("offline", showNetwork);
  setInterval(sync, SYNC_EVERY_MS);

  // ---- QR codes and asset ids ----------------------------------------------------------

  function assetIdOf(text) {
    const value = String(text || "").trim();
    const inUrl = ASSET_IN_URL.exec(value);
    if (inUrl) return inUrl[1];
    return ASSET_ID.test(value) ? value : null;
  }

  async function openAsset(text) {
    const id = assetIdOf(text);
    el("scan-note").hidden = false;
    if (!id) {
      el("scan-note").textContent = t("crew.scan.not_an_asset");
      return;
    }
    const direct = [...orders.values()].find((o) => o.asset_id === id || o.device_id === id);
    if (direct) {
      el("scan-note").hidden = true;
      select(direct.work_order_id);
      return;
    }
    let asset = null;
    try {
      asset = await (await Rasd.api("/api/v1/assets/" + encodeURIComponent(id))).json();
    } catch (error) { /* offline, or not this crew's: said below */ }
    // A luminaire's or driver's code: its pole's order.
    const above = asset && [...orders.values()].find(
      (o) => o.asset_id === asset.parent_id || (asset.device_id && o.device_id === asset.device_id));
    if (above) {
      el("scan-note").hidden = true;
      select(above.work_order_id);
      return;
    }
    el("scan-note").textContent = asset ?
      t("crew.scan.no_order", { id: id, kind: label("asset", asset.kind), district: asset.district || "" }) :
      t("crew.scan.unknown", { id: id });
  }

  el("asset-form").onsubmit = function (event) {
    event.preventDefault();
    openAsset(el("asset-id").value);
  };

  const scanning = { stream: null, timer: null };
  function stopScan() {
    clearTimeout(scanning.timer);
    if (scanning.stream) for (const track of scanning.stream.getTracks()) track.stop();
    scanning.stream = null;
    el("scanner").hidden = true;
  }
  el("scanner-close").onclick = stopScan;

  async function canScan() {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices) return false;
    try {
      return (await BarcodeDetector.getSupportedFormats()).includes("qr_code");
    } catch (error) {
      return false;
    }
  }

  if (await canScan()) {
    el("scan").onclick = async function () {
      const detector = new BarcodeDetector({ formats: ["qr_code"] });
      try {
        scanning.stream = await navigator.mediaDevices.getUserMedia(
          { video: { facingMode: "environment" }, audio: false });
      } catch (error) {
        el("scan-note").hidden = false;
        el("scan-note").textContent = t("crew.scan.no_camera");
        return;
      }
      const video = el("scanner-video");
      video.srcObject = scanning.stream;
      el("scanner").hidden = false;
      await video.play();
      async function look() {
        if (!scanning.stream) return;
        try {
          const codes = await detector.detect(video);
          if (codes.length) {
            stopScan();
            el("asset-id").value = assetIdOf(codes[0].rawValue) || "";
            openAsset(codes[0].rawValue);
            return;
          }
        } catch (error) { /* a frame not ready yet */ }
        scanning.timer = setTimeout(look, 250);
      }
      look();
    };
  } else {
    // No fake scanner: this browser has no QR reader the page may use (iPhone Safari, Firefox).
    el("scan").hidden = true;
    el("scan-note").hidden = false;
    el("scan-note").textContent = t("crew.scan.unsupported");
  }

  // ---- position, live changes, start ---------------------------------------------------

  if (navigator.geolocation) {
    navigator.geolocation.watchPosition(function (where) {
      position = { lat: where.coords.latitude, lon: where.coords.longitude };
      render();
    }, function () { position = null; render(); },
    { enableHighAccuracy: true, maximumAge: 30000, timeout: 20000 });
  }

  const districts = new Set();
  Rasd.live("/ws/alerts", {}, function (frame) {
    if (frame.type === "snapshot" && frame.work_orders) {
      setOrders(frame.work_orders);
      for (const o of frame.work_orders) if (o.district) districts.add(o.district);
    } else if (frame.type === "work_order" && frame.work_order) {
      keep(frame.work_order);
      if (frame.work_order.district) districts.add(frame.work_order.district);
      render();
    } else {
      return;
    }
    el("scope").textContent = districts.size ?
      t("crew.districts", { list: [...districts].sort().map((d) => label("district", d)).join(", ") }) : "";
    save();
  }, function (status) {
    el("status").textContent = Rasd.statusText(status);
    el("status").className = "status" + (status === "live" ? " live" : "");
    if (status === "token refused") refused();
  });

  showNetwork();
  await showOutbox();
  await loadOrders();
  await sync();
  setInterval(render, 60000);
  window.rasdCrew = {
    orders, select, openAsset, sync, outbox: RasdOutbox, syncs: () => syncs,
    position: () => position,
  };
})();
