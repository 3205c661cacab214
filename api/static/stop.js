/* A stop's next buses (/stops/{stop_id}): its lines and, per line and direction, the buses on
   their way, soonest first, from /stops/{stop_id}/arrivals.json. Polled every 20 s while the
   tab is visible (paused when hidden, refreshed at once when shown again); between polls the
   minutes count down from the server's own "in_s". An honest line says how fresh the times
   are, and when the network or the feed fails. No token, no build step. */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const POLL_MS = 20000;
  const SHOWN = 3;  // buses per line: the next one large, two more after it
  const stopId = decodeURIComponent(window.location.pathname.replace(/^\/stops\//, ""));
  const url = "/stops/" + encodeURIComponent(stopId) + "/arrivals.json";
  const state = { data: null, fetchedAt: 0, failed: false, polls: 0, timer: null };
  window.rasdStop = state;
  const status = document.getElementById("status");
  const list = document.getElementById("lines");

  const byLine = (a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

  function when(inS) {
    const n = Math.floor(Math.max(0, inS) / 60);
    return n === 0 ? t("stop.due") : t("stop.in_minutes", { n: n });
  }

  function render() {
    const data = state.data;
    if (!data) return;
    const elapsed = (Date.now() - state.fetchedAt) / 1000;
    // Lines in the riders' order (5, 22, A), as /stops.json lists them; each direction after.
    const lines = data.lines.slice().sort((a, b) => byLine(a.route_id, b.route_id) ||
                                          a.direction_id - b.direction_id);
    document.getElementById("stop-name").textContent = data.name;
    const routes = [...new Set(lines.map((l) => l.route_id))];
    document.getElementById("stop-lines").textContent = t("stop.lines", { lines: routes.join(" · ") });
    list.replaceChildren(...lines.map(function (line) {
      const item = document.createElement("li");
      item.className = "line";
      item.dataset.route = line.route_id;
      item.dataset.direction = String(line.direction_id);
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.dir = "ltr";
      badge.textContent = line.route_id;
      const towards = document.createElement("span");
      towards.className = "towards";
      towards.textContent = t("stop.towards", { headsign: line.headsign });
      const times = document.createElement("ol");
      times.className = "times";
      const coming = line.arrivals.slice(0, SHOWN);
      for (const bus of coming) {
        const li = document.createElement("li");
        const left = bus.in_s - elapsed;
        li.dataset.vehicle = bus.vehicle_id;
        li.dataset.inS = String(bus.in_s);
        li.className = left < 60 ? "due" : "";
        li.textContent = when(left);
        times.append(li);
      }
      if (!coming.length) {
        const li = document.createElement("li");
        li.className = "none";
        li.textContent = t("stop.none");
        times.append(li);
      }
      item.append(badge, towards, times);
      return item;
    }));
  }

  function updated() {
    const s = Math.max(0, Math.round((Date.now() - state.fetchedAt) / 1000));
    return s < 90 ? t("stop.updated_seconds", { n: s })
      : t("stop.updated_minutes", { n: Math.round(s / 60) });
  }

  function showStatus() {
    const parts = [];
    if (state.failed) parts.push(navigator.onLine === false ? t("stop.offline") : t("stop.failed"));
    if (state.data) parts.push(updated());
    status.textContent = parts.join(" ");
    status.classList.toggle("bad", state.failed);
  }

  function unknown() {
    document.getElementById("stop-name").textContent = t("stop.unknown_title");
    document.getElementById("unknown").hidden = false;
    status.textContent = "";
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = document.visibilityState === "hidden" ? null : setTimeout(poll, POLL_MS);
  }

  async function poll() {
    clearTimeout(state.timer);
    try {
      const response = await fetch(url, { cache: "no-store" });
      if (response.status === 404) {
        unknown();
        return;  // no such stop: nothing to poll for
      }
      if (!response.ok) throw new Error(String(response.status));
      state.data = await response.json();
      state.fetchedAt = Date.now();
      state.failed = false;
    } catch (error) {
      state.failed = true;  // keep the last times on screen, said to be old
    }
    state.polls += 1;
    render();
    showStatus();
    schedule();
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      clearTimeout(state.timer);
      state.timer = null;
    } else {
      poll();
    }
  });
  window.addEventListener("online", poll);
  window.addEventListener("offline", function () { state.failed = true; showStatus(); });
  // The countdown and "updated ... ago" move on between polls.
  setInterval(function () { render(); showStatus(); }, 5000);
  await poll();
  document.body.dataset.ready = "true";
})();
