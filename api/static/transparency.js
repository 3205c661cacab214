// The transparency page: every chart and table is drawn from the public open-data feeds
// (/open-data/v1/<feed>.json), the same figures anyone can download as CSV or JSON.
"use strict";

(function () {
  const BASE = "/open-data/v1/";
  const PALETTE = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f",
                   "#9e9d24", "#4e342e", "#ad1457", "#37474f"];
  const t = (key, values) => window.RasdI18n.t(key, values);
  const STATUS = [
    {key: "in_service", color: "#2e7d32"},
    {key: "faulty", color: "#c62828"},
    {key: "silent", color: "#9e9e9e"},
  ];
  const statusLabel = (s) => t("transparency.status." + s.key);
  const NONE = "\u0000none";  // a series without a name (unassigned round...), labelled at display
  const shown = (name) => (name === NONE ? t("transparency.none") : name);
  // Right to left: categories and time run from the right, as the page reads.
  const rtl = document.documentElement.dir === "rtl";
  const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;
  const charts = [];

  // The period asked for in the address (?from=YYYY-MM&to=YYYY-MM); none: the feeds' defaults
  // (the last 31 days, the last 12 months).
  const asked = new URLSearchParams(window.location.search);
  const period = {
    from: MONTH.test(asked.get("from") || "") ? asked.get("from") : null,
    to: MONTH.test(asked.get("to") || "") ? asked.get("to") : null,
  };

  function lastDay(month) {
    const [year, m] = month.split("-").map(Number);
    return month + "-" + String(new Date(Date.UTC(year, m, 0)).getUTCDate()).padStart(2, "0");
  }

  function query(feed) {
    if (feed === "lights-status" || (!period.from && !period.to)) {
      return "";
    }
    const daily = !feed.endsWith("-monthly");
    const params = new URLSearchParams();
    if (period.from) {
      params.set("from", daily ? period.from + "-01" : period.from);
    }
    if (period.to) {
      params.set("to", daily ? lastDay(period.to) : period.to);
    }
    return "?" + params.toString();
  }

  async function load(feed) {
    const answer = await fetch(BASE + feed + ".json" + query(feed));
    if (!answer.ok) {
      throw new Error(feed + ": HTTP " + answer.status);
    }
    return answer.json();
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      node.setAttribute(name, value);
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined) {
      return "–";
    }
    return typeof value === "number" ? window.RasdI18n.number(value, {maximumFractionDigits: 2}) : value;
  }

  function links(section, doc) {
    const holder = section.querySelector(".downloads");
    const feed = holder.dataset.feed;
    holder.append(t("transparency.download") + " ");
    // The CSV's header row in the page's language: a person opens it in a spreadsheet.
    const search = new URLSearchParams(query(feed));
    search.set("lang", document.documentElement.lang);
    holder.append(el("a", {href: BASE + feed + ".csv?" + search, download: feed + ".csv"}, "CSV"));
    holder.append(" · ");
    holder.append(el("a", {href: BASE + feed + ".json" + query(feed)}, "JSON"));
    if (doc && doc.from) {
      holder.append(" " + t("transparency.range", {from: doc.from, to: doc.to}));
    }
  }

  // The accessible fallback: the feed's rows as a table with a caption and units.
  function table(section, doc) {
    const holder = section.querySelector(".table");
    const node = el("table");
    const title = t("feed." + doc.feed + ".title");
    node.append(el("caption", {}, title + (doc.from ? " " + t("transparency.range", {from: doc.from, to: doc.to}) : "")));
    const head = el("tr");
    for (const column of doc.columns) {
      head.append(el("th", {scope: "col", "data-column": column.name},
                     t("transparency.column." + column.name)));
    }
    const thead = el("thead");
    thead.append(head);
    node.append(thead);
    const body = el("tbody");
    for (const row of doc.rows) {
      const line = el("tr");
      doc.columns.forEach((column, i) => {
        const value = row[column.name];
        line.append(el(i === 0 ? "th" : "td", i === 0 ? {scope: "row"} : {},
                       value === null && column.type === "string" ? shown(NONE) :
                       column.name === "service_code" ? t("service." + value + ".name") : fmt(value)));
      });
      body.append(line);
    }
    node.append(body);
    holder.replaceChildren(node);
  }

  function empty(section, message) {
    const figure = section.querySelector("figure");
    figure.querySelector("canvas").hidden = true;
    figure.querySelector("figcaption").textContent = message;
    section.classList.add("empty");
  }

  function draw(section, config, summary) {
    const canvas = section.querySelector("canvas");
    canvas.setAttribute("aria-label", summary);
    section.querySelector("figcaption").textContent = summary;
    if (typeof window.Chart !== "function") {
      // No chart library: the table is the figure.
      canvas.hidden = true;
      section.classList.add("nochart");
      section.querySelector("details").open = true;
      return;
    }
    config.options = Object.assign({
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      locale: window.RasdI18n.formatLocale,
      plugins: {legend: {position: "bottom", rtl: rtl}, tooltip: {rtl: rtl}},
    }, config.options || {});
    // The category axis of a right-to-left page runs from the right.
    const scales = config.options.scales || (config.options.scales = {});
    const along = config.options.indexAxis === "y" ? "y" : "x";
    if (rtl && along === "x") {
      scales.x = Object.assign({}, scales.x || {}, {reverse: true});
      scales.y = Object.assign({position: "right"}, scales.y || {});
    }
    // The page's face (Noto Sans Arabic or Tifinagh where the locale needs one) in the canvas too.
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    charts.push(new window.Chart(canvas, config));
  }

  // rows -> {labels: sorted x values, series: [{name, values}]} summing valueKey.
  function pivot(rows, xKey, seriesKey, valueKey) {
    const labels = [...new Set(rows.map((r) => r[xKey]))].sort();
    const names = [...new Set(rows.map((r) => r[seriesKey] ?? NONE))].sort();
    const index = new Map(labels.map((x, i) => [x, i]));
    const series = names.map((name) => ({name, values: labels.map(() => null)}));
    const byName = new Map(series.map((s) => [s.name, s]));
    for (const row of rows) {
      const s = byName.get(row[seriesKey] ?? NONE);
      const i = index.get(row[xKey]);
      s.values[i] = (s.values[i] || 0) + (row[valueKey] ?? 0);
    }
    return {labels, series};
  }

  function datasets(series, extra) {
    return series.map((s, i) => Object.assign({
      label: shown(s.name),
      data: s.values,
      backgroundColor: PALETTE[i % PALETTE.length],
      borderColor: PALETTE[i % PALETTE.length],
    }, extra || {}));
  }

  function sum(rows, key) {
    return rows.reduce((total, r) => total + (r[key] || 0), 0);
  }

  const SECTIONS = {
    "lights-now": async (section) => {
      const doc = await load("lights-status");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, t("transparency.empty.lights_now"));
      }
      const totals = section.querySelector(".totals");
      const all = sum(doc.rows, "lights");
      totals.replaceChildren(...STATUS.map((s) => {
        const box = el("div", {class: "total " + s.key});
        box.append(el("strong", {}, fmt(sum(doc.rows, s.key))), el("span", {}, statusLabel(s)));
        return box;
      }));
      const labels = doc.rows.map((r) => shown(r.district ?? NONE));
      draw(section, {
        type: "bar",
        data: {labels, datasets: STATUS.map((s) => ({
          label: statusLabel(s), data: doc.rows.map((r) => r[s.key]), backgroundColor: s.color,
        }))},
        options: {indexAxis: "y", scales: {
          x: {stacked: true, reverse: rtl, title: {display: true, text: t("transparency.axis.lights")}},
          y: {stacked: true, position: rtl ? "right" : "left"}}},
      }, t("transparency.summary.lights_now", {
        in_service: fmt(sum(doc.rows, "in_service")), all: fmt(all),
        faulty: fmt(sum(doc.rows, "faulty")), silent: fmt(sum(doc.rows, "silent")),
        as_of: doc.rows[0].as_of}));
    },
    "lights-daily": async (section) => {
      const doc = await load("lights-status-daily");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, t("transparency.empty.lights_daily"));
      }
      const labels = [...new Set(doc.rows.map((r) => r.date))].sort();
      const total = (key) => labels.map((d) => sum(doc.rows.filter((r) => r.date === d), key));
      draw(section, {
        type: "line",
        data: {labels, datasets: STATUS.map((s) => ({
          label: statusLabel(s), data: total(s.key), borderColor: s.color, backgroundColor: s.color,
        }))},
        options: {scales: {y: {beginAtZero: true, title: {display: true, text: t("transparency.axis.lights")}}}},
      }, t("transparency.summary.lights_daily", {from: labels[0], to: labels[labels.length - 1]}));
    },
    "repairs": async (section) => {
      const doc = await load("fault-repairs-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, t("transparency.empty.repairs"));
      }
      const {labels, series} = pivot(doc.rows, "month", "district", "median_hours");
      draw(section, {
        type: "line",
        data: {labels, datasets: datasets(series, {spanGaps: true})},
        options: {scales: {y: {beginAtZero: true, title: {display: true, text: t("transparency.axis.median_hours")}}}},
      }, t("transparency.summary.repairs", {from: labels[0], to: labels[labels.length - 1],
                                            repairs: sum(doc.rows, "repairs")}));
    },
    "energy": async (section) => {
      const doc = await load("energy-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, t("transparency.empty.energy"));
      }
      const {labels, series} = pivot(doc.rows, "month", "district", "energy_kwh");
      draw(section, {
        type: "bar",
        data: {labels, datasets: datasets(series)},
        options: {scales: {x: {stacked: true}, y: {stacked: true, title: {display: true, text: t("transparency.axis.kwh")}}}},
      }, t("transparency.summary.energy", {kwh: fmt(Math.round(sum(doc.rows, "energy_kwh"))),
                                           from: labels[0], to: labels[labels.length - 1]}));
    },
    "waste": async (section) => {
      const doc = await load("waste-rounds-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, t("transparency.empty.waste"));
      }
      const planned = pivot(doc.rows, "month", "operator", "planned");
      const completed = pivot(doc.rows, "month", "operator", "completed");
      const share = planned.series.map((s, i) => ({
        name: s.name,
        values: s.values.map((p, j) => (p ? Math.round(1000 * (completed.series[i].values[j] || 0) / p) / 10 : null)),
      }));
      draw(section, {
        type: "bar",
        data: {labels: planned.labels, datasets: datasets(share)},
        options: {scales: {y: {min: 0, max: 100, title: {display: true, text: t("transparency.axis.rounds_pct")}}}},
      }, t("transparency.summary.waste", {completed: fmt(sum(doc.rows, "completed")),
                                          planned: fmt(sum(doc.rows, "planned")), from: planned.labels[0],
                                          to: planned.labels[planned.labels.length - 1]}));
    },
    "buses": async (section) => {
      const doc = await load("bus-service-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, t("transparency.empty.buses"));
      }
      const {labels, series} = pivot(doc.rows, "month", "line", "km");
      draw(section, {
        type: "bar",
        data: {labels, datasets: datasets(series)},
        options: {scales: {x: {stacked: true}, y: {stacked: true, title: {display: true, text: t("transparency.axis.km")}}}},
      }, t("transparency.summary.buses", {km: fmt(Math.round(sum(doc.rows, "km"))),
                                          trips: fmt(sum(doc.rows, "trips")), lines: series.length,
                                          from: labels[0], to: labels[labels.length - 1]}));
    },
    "complaints": async (section) => {
      const doc = await load("complaints-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, t("transparency.empty.complaints"));
      }
      const {labels, series} = pivot(doc.rows, "month", "service_code", "received");
      for (const s of series) {
        s.name = s.name === NONE ? NONE : t("service." + s.name + ".name");
      }
      draw(section, {
        type: "bar",
        data: {labels, datasets: datasets(series)},
        options: {scales: {x: {stacked: true}, y: {stacked: true, title: {display: true, text: t("transparency.axis.complaints")}}}},
      }, t("transparency.summary.complaints", {received: fmt(sum(doc.rows, "received")),
                                               closed: fmt(sum(doc.rows, "closed")),
                                               from: labels[0], to: labels[labels.length - 1]}));
    },
  };

  // The footer's sentence holds two links: translated around them.
  function footer() {
    const holder = document.getElementById("footer");
    const parts = t("transparency.footer", {catalogue: "\u0001", reference: "\u0002"}).split(/([\u0001\u0002])/);
    holder.replaceChildren(...parts.map((part) => part === "\u0001" ?
      el("a", {href: "/open-data/v1/catalog.json"}, t("transparency.footer_catalogue")) :
      part === "\u0002" ? el("a", {href: "/docs#/open-data"}, t("transparency.footer_reference")) :
      document.createTextNode(part)));
  }

  async function main() {
    await window.RasdI18n.ready;
    footer();
    const form = document.getElementById("period");
    form.elements.from.value = period.from || "";
    form.elements.to.value = period.to || "";
    const jobs = Object.entries(SECTIONS).map(async ([id, render]) => {
      const section = document.getElementById(id);
      try {
        await render(section);
      } catch (error) {
        empty(section, t("transparency.failed", {message: error.message}));
        section.classList.add("failed");
      }
    });
    try {
      const catalogue = await (await fetch(BASE + "catalog.json")).json();
      const licence = document.getElementById("licence");
      licence.append(t("transparency.licence") + " ", el("a", {href: catalogue.licence.url}, catalogue.licence.name));
    } catch (error) {
      // The page works without the catalogue: only the licence line is missing.
    }
    await Promise.all(jobs);
    window.rasdCharts = charts;
    document.body.dataset.ready = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", main);
  } else {
    main();
  }
})();
