/* The printable sheet of stop QR codes (/stops/qr-sheet?line=A, or ?stop=bab-doukkala): each
   code is drawn by the server (/stops/{stop_id}/qr.svg, the address of the stop's next-bus
   page), with the stop's name and lines under it. Printed as it is (the browser's print). */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const query = new URLSearchParams(window.location.search);
  const line = query.get("line");
  const only = query.get("stop");
  const sheet = document.getElementById("sheet");
  const status = document.getElementById("sheet-status");
  const select = document.getElementById("line");
  const done = () => { document.body.dataset.ready = "true"; };
  let stops;
  try {
    const answer = await fetch("/stops.json");
    if (!answer.ok) throw new Error(String(answer.status));
    stops = await answer.json();
  } catch (error) {
    status.textContent = t("stop.failed");
    done();
    return;
  }
  const routes = [...new Set(stops.flatMap((s) => s.routes))]
    .sort((a, b) => a.length - b.length || a.localeCompare(b));
  select.replaceChildren(...routes.map(function (route) {
    const option = document.createElement("option");
    option.value = route;
    option.textContent = route;
    option.selected = route === line;
    return option;
  }));
  const chosen = stops.filter((s) => (only ? s.stop_id === only : line && s.routes.includes(line)));
  if (!line && !only) { done(); return; }
  status.textContent = t("stop.search.count", { count: chosen.length });
  sheet.replaceChildren(...chosen.map(function (stop) {
    const figure = document.createElement("figure");
    figure.className = "qr";
    figure.dataset.stopId = stop.stop_id;
    const img = document.createElement("img");
    img.src = "/stops/" + encodeURIComponent(stop.stop_id) + "/qr.svg";
    img.alt = stop.name;
    const caption = document.createElement("figcaption");
    const name = document.createElement("b");
    name.dir = "auto";
    name.textContent = stop.name;
    caption.append(name, t("stop.qr.caption"), document.createElement("br"),
                   t("stop.lines", { lines: stop.routes.join(" · ") }));
    figure.append(img, caption);
    return figure;
  }));
  await Promise.all([...sheet.querySelectorAll("img")].map((img) => img.decode().catch(() => null)));
  done();
})();
