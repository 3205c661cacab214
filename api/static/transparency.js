// The transparency page: every chart and table is drawn from the public open-data feeds
// (/open-data/v1/<feed>.json), the same figures anyone can download as CSV or JSON.
"use strict";

(function () {
  const BASE = "/open-data/v1/";
  const PALETTE = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f",
                   "#9e9d24", "#4e342e", "#ad1457", "#37474f"];
  const STATUS = [
    {key: "in_service", label: "In service", color: "#2e7d32"},
    {key: "faulty", label: "Faulty", color: "#c62828"},
    {key: "silent", label: "Silent", color: "#9e9e9e"},
  ];
  const NONE = "(none)";
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
    return typeof value === "number" ? value.toLocaleString("en", {maximumFractionDigits: 2}) : value;
  }

  function links(section, doc) {
    const holder = section.querySelector(".downloads");
    const feed = holder.dataset.feed;
    holder.append("Download: ");
    holder.append(el("a", {href: BASE + feed + ".csv" + query(feed), download: feed + ".csv"}, "CSV"));
    holder.append(" · ");
    holder.append(el("a", {href: BASE + feed + ".json" + query(feed)}, "JSON"));
    if (doc && doc.from) {
      holder.append(` (${doc.from} to ${doc.to}; updated ${doc.update_frequency})`);
    }
  }

  // The accessible fallback: the feed's rows as a table with a caption and units.
  function table(section, doc) {
    const holder = section.querySelector(".table");
    const node = el("table");
    node.append(el("caption", {}, doc.title + (doc.from ? ` (${doc.from} to ${doc.to})` : "")));
    const head = el("tr");
    for (const column of doc.columns) {
      const named = column.unit && column.name.toLowerCase().includes(column.unit.toLowerCase());
      const unit = column.unit && !named ? ` (${column.unit})` : "";
      head.append(el("th", {scope: "col", title: column.description}, column.name.replace(/_/g, " ") + unit));
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
                       value === null && column.type === "string" ? NONE : fmt(value)));
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
      plugins: {legend: {position: "bottom"}},
    }, config.options || {});
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
      label: s.name,
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
        return empty(section, "No streetlights registered yet.");
      }
      const totals = section.querySelector(".totals");
      const all = sum(doc.rows, "lights");
      totals.replaceChildren(...STATUS.map((s) => {
        const box = el("div", {class: "total " + s.key});
        box.append(el("strong", {}, fmt(sum(doc.rows, s.key))), el("span", {}, s.label));
        return box;
      }));
      const labels = doc.rows.map((r) => r.district ?? NONE);
      draw(section, {
        type: "bar",
        data: {labels, datasets: STATUS.map((s) => ({
          label: s.label, data: doc.rows.map((r) => r[s.key]), backgroundColor: s.color,
        }))},
        options: {indexAxis: "y", scales: {x: {stacked: true, title: {display: true, text: "lights"}},
                                           y: {stacked: true}}},
      }, `${fmt(sum(doc.rows, "in_service"))} of ${fmt(all)} streetlights in service, ` +
         `${fmt(sum(doc.rows, "faulty"))} faulty, ${fmt(sum(doc.rows, "silent"))} silent ` +
         `(as of ${doc.rows[0].as_of}).`);
    },
    "lights-daily": async (section) => {
      const doc = await load("lights-status-daily");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, "No daily figures yet: the first is published after a day ends.");
      }
      const labels = [...new Set(doc.rows.map((r) => r.date))].sort();
      const total = (key) => labels.map((d) => sum(doc.rows.filter((r) => r.date === d), key));
      draw(section, {
        type: "line",
        data: {labels, datasets: STATUS.map((s) => ({
          label: s.label, data: total(s.key), borderColor: s.color, backgroundColor: s.color,
        }))},
        options: {scales: {y: {beginAtZero: true, title: {display: true, text: "lights"}}}},
      }, `Streetlights in service, faulty and silent at the end of each day, ${labels[0]} to ` +
         `${labels[labels.length - 1]}.`);
    },
    "repairs": async (section) => {
      const doc = await load("fault-repairs-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, "No repairs in this period.");
      }
      const {labels, series} = pivot(doc.rows, "month", "district", "median_hours");
      draw(section, {
        type: "line",
        data: {labels, datasets: datasets(series, {spanGaps: true})},
        options: {scales: {y: {beginAtZero: true, title: {display: true, text: "median hours to repair"}}}},
      }, `Median hours from fault to repair per district, ${labels[0]} to ${labels[labels.length - 1]}; ` +
         `${fmt(sum(doc.rows, "repairs"))} repairs.`);
    },
    "energy": async (section) => {
      const doc = await load("energy-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, "No energy figures in this period.");
      }
      const {labels, series} = pivot(doc.rows, "month", "district", "energy_kwh");
      draw(section, {
        type: "bar",
        data: {labels, datasets: datasets(series)},
        options: {scales: {x: {stacked: true}, y: {stacked: true, title: {display: true, text: "kWh"}}}},
      }, `${fmt(Math.round(sum(doc.rows, "energy_kwh")))} kWh used by street lighting, ` +
         `${labels[0]} to ${labels[labels.length - 1]}.`);
    },
    "waste": async (section) => {
      const doc = await load("waste-rounds-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, "No collection rounds in this period.");
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
        options: {scales: {y: {min: 0, max: 100, title: {display: true, text: "% of rounds completed"}}}},
      }, `${fmt(sum(doc.rows, "completed"))} of ${fmt(sum(doc.rows, "planned"))} planned rounds ` +
         `completed, ${planned.labels[0]} to ${planned.labels[planned.labels.length - 1]}.`);
    },
    "buses": async (section) => {
      const doc = await load("bus-service-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, "No bus service figures in this period.");
      }
      const {labels, series} = pivot(doc.rows, "month", "line", "km");
      draw(section, {
        type: "bar",
        data: {labels, datasets: datasets(series)},
        options: {scales: {x: {stacked: true}, y: {stacked: true, title: {display: true, text: "km"}}}},
      }, `${fmt(Math.round(sum(doc.rows, "km")))} km and ${fmt(sum(doc.rows, "trips"))} trips ` +
         `on ${series.length} lines, ${labels[0]} to ${labels[labels.length - 1]}.`);
    },
    "complaints": async (section) => {
      const doc = await load("complaints-monthly");
      links(section, doc);
      table(section, doc);
      if (!doc.rows.length) {
        return empty(section, "No complaints in this period.");
      }
      const {labels, series} = pivot(doc.rows, "month", "service_code", "received");
      draw(section, {
        type: "bar",
        data: {labels, datasets: datasets(series)},
        options: {scales: {x: {stacked: true}, y: {stacked: true, title: {display: true, text: "complaints received"}}}},
      }, `${fmt(sum(doc.rows, "received"))} complaints received and ${fmt(sum(doc.rows, "closed"))} ` +
         `closed, ${labels[0]} to ${labels[labels.length - 1]}.`);
    },
  };

  async function main() {
    const form = document.getElementById("period");
    form.elements.from.value = period.from || "";
    form.elements.to.value = period.to || "";
    const jobs = Object.entries(SECTIONS).map(async ([id, render]) => {
      const section = document.getElementById(id);
      try {
        await render(section);
      } catch (error) {
        empty(section, "These figures could not be loaded (" + error.message + ").");
        section.classList.add("failed");
      }
    });
    try {
      const catalogue = await (await fetch(BASE + "catalog.json")).json();
      const licence = document.getElementById("licence");
      licence.append("Licence: ", el("a", {href: catalogue.licence.url}, catalogue.licence.name));
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
