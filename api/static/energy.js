/* The finance and lighting departments' page: a reconciled month of street lighting electricity
   (GET /api/v1/energy/reconciliation): the city's or a district's totals, modelled, metered and
   billed energy per district (chart and table), and the cabinets, sortable, with their flags,
   each flag's evidence, the CSV and each flagged cabinet's dispute summary in French and Arabic.
   Right to left: tables through dir, the chart mirrored. Plain browser JavaScript. */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const label = RasdI18n.label;
  const rtl = RasdI18n.rtl;
  const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;
  const TZ = "Africa/Casablanca";
  const query = new URLSearchParams(window.location.search);
  const form = document.getElementById("period");
  const status = document.getElementById("status");

  // A figure that rounds to zero is written 0, never -0.
  const fixed = (v, digits) => RasdI18n.number(Math.abs(v) < 0.5 / 10 ** digits ? 0 : v,
    { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const number = (v, digits) => (v === null || v === undefined ? "—" : fixed(v, digits || 0));
  const kwh = (v) => (v === null || v === undefined ? "—" : t("energy.unit.kwh", { value: fixed(v, 0) }));
  const dh = (v) => (v === null || v === undefined ? "—" : t("energy.unit.dh", { value: fixed(v, 2) }));
  const co2 = (v) => (v === null || v === undefined ? "—" : t("energy.unit.co2", { value: fixed(v, 0) }));

  // The month asked for, else the last complete local month (the one the bills are for).
  function lastMonth() {
    const now = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit" })
      .format(new Date()).slice(0, 7);
    const [year, m] = now.split("-").map(Number);
    return m === 1 ? (year - 1) + "-12" : year + "-" + String(m - 1).padStart(2, "0");
  }
  const month = MONTH.test(query.get("month") || "") ? query.get("month") : lastMonth();
  const district = query.get("district");
  form.elements.month.value = month;

  // District names: the catalogue's label when it has one, else the outlines' own name.
  const outlines = {};
  try {
    const geo = await (await fetch("/static/districts.geojson")).json();
    for (const f of geo.features) outlines[f.properties.name] = f.properties.label;
  } catch (ignored) { /* the codes stand in for the names */ }
  function districtName(code) {
    if (!code) return t("energy.no_district");
    const own = label("district", code);
    return own !== code ? own : outlines[code] || code;
  }
  const select = form.elements.district;
  function offer(codes) {
    for (const code of codes) {
      if ([...select.options].some((o) => o.value === code)) continue;
      const option = document.createElement("option");
      option.value = code;
      option.textContent = districtName(code);
      select.append(option);
    }
  }
  offer(Object.keys(outlines));
  if (district !== null) offer([district]);
  select.value = district || "";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  Rasd.currentToken = Rasd.token() || await Rasd.askToken(t("energy.login_prompt"));
  const scope = new URLSearchParams({ month: month });
  if (district) scope.set("district", district);

  let data;
  try {
    data = await (await Rasd.api("/api/v1/energy/reconciliation?" + scope.toString())).json();
  } catch (error) {
    status.hidden = true;
    const box = document.getElementById("error");
    if (error.status === 404) {
      box.textContent = district
        ? t("energy.no_cabinets", { district: districtName(district), month: month })
        : t("energy.not_reconciled", { month: month });
    } else {
      box.textContent = t("energy.failed", { message: error.message });
    }
    if (error.status === 401) {
      Rasd.forgetToken();
      Rasd.askToken(t("energy.login_refused")).then(() => window.location.reload());
    }
    document.body.dataset.ready = "true";
    return;
  }
  offer(data.districts.map((d) => d.key).filter((k) => k));
  const flaggedIn = (rows) => rows.filter((r) => r.flags.length).length;

  // Totals of the city, or of the district asked for (the API's `city` is then that district).
  function totals() {
    const c = data.city;
    const monthName = new Intl.DateTimeFormat(RasdI18n.formatLocale, {
      year: "numeric", month: "long", timeZone: "UTC", numberingSystem: "latn",
    }).format(new Date(month + "-15T12:00:00Z"));
    document.getElementById("totals-title").textContent = t("energy.totals_heading", {
      name: district ? districtName(district) : t("energy.city"), month: monthName,
    });
    const at = new Intl.DateTimeFormat(RasdI18n.formatLocale, {
      dateStyle: "medium", timeStyle: "short", timeZone: TZ, numberingSystem: "latn",
    }).format(new Date(data.computed_at));
    document.getElementById("run").textContent = t("energy.computed", { at: at });
    document.getElementById("example-tariffs").hidden = !/tariffs\.example\.toml$/.test(data.tariff_source);
    const cabinets = (n) => t("energy.cabinets_of", { n: number(n), cabinets: number(c.cabinets) });
    const saved = c.dimming_saved_kwh + c.retrofit_saved_kwh;
    const figures = [
      ["modelled_kwh", t("energy.total.modelled"), c.modelled_kwh, kwh(c.modelled_kwh),
       t("energy.lights_count", { n: number(c.lights) })],
      ["metered_kwh", t("energy.total.metered"), c.metered_kwh, kwh(c.metered_kwh), cabinets(c.metered_cabinets)],
      ["billed_kwh", t("energy.total.billed"), c.billed_kwh, kwh(c.billed_kwh), cabinets(c.billed_cabinets)],
      ["billed_dh", t("energy.total.billed_dh"), c.billed_dh, dh(c.billed_dh), ""],
      ["recomputed_dh", t("energy.total.recomputed_dh"), c.recomputed_dh, dh(c.recomputed_dh),
       t("energy.total.gap_dh", { value: dh(c.billed_dh - c.recomputed_dh) })],
      ["saved_kwh", t("energy.total.saved_kwh"), saved, kwh(saved),
       t("energy.total.saved_split", { dimming: kwh(c.dimming_saved_kwh), retrofit: kwh(c.retrofit_saved_kwh) })],
      ["saved_dh", t("energy.total.saved_dh"), c.saved_dh, dh(c.saved_dh), ""],
      ["saved_co2_kg", t("energy.total.saved_co2"), c.saved_co2_kg, co2(c.saved_co2_kg), ""],
      ["flagged", t("energy.total.flagged"), flaggedIn(data.cabinets),
       t("energy.flagged_value", { n: number(flaggedIn(data.cabinets)), cabinets: number(c.cabinets) }), ""],
    ];
    document.getElementById("totals").replaceChildren(...figures.map(([key, name, value, text, sub]) => {
      const box = el("div", { class: "figure", "data-key": key, "data-value": String(value) });
      box.append(el("span", {}, name), el("b", {}, text));
      if (sub) box.append(el("small", {}, sub));
      return box;
    }));
    const csv = document.getElementById("csv");
    // The token rides in the query: a plain link cannot send a header, and the API never logs
    // query strings (nor sends a Referer: the pages' policy is no-referrer).
    const link = new URLSearchParams(scope);
    link.set("token", Rasd.currentToken);
    csv.href = "/api/v1/energy/reconciliation.csv?" + link.toString();
    csv.setAttribute("download", "energy-reconciliation_" + month + (district ? "_" + district : "") + ".csv");
  }

  const DISTRICT_COLUMNS = [
    ["energy.col.district", null],
    ["energy.col.cabinets", (d) => number(d.cabinets)],
    ["energy.col.lights", (d) => number(d.lights)],
    ["energy.col.modelled_kwh", (d) => number(d.modelled_kwh)],
    ["energy.col.metered_kwh", (d) => number(d.metered_kwh)],
    ["energy.col.billed_kwh", (d) => number(d.billed_kwh)],
    ["energy.col.billed_dh", (d) => number(d.billed_dh, 2)],
    ["energy.col.recomputed_dh", (d) => number(d.recomputed_dh, 2)],
    ["energy.col.saved_kwh", (d) => number(d.dimming_saved_kwh + d.retrofit_saved_kwh)],
    ["energy.col.saved_dh", (d) => number(d.saved_dh, 2)],
    ["energy.col.saved_co2", (d) => number(d.saved_co2_kg)],
    ["energy.col.flagged", (d) => number(d.flagged)],
  ];

  function districtsTable() {
    const rows = data.districts.map((d) => Object.assign({}, d, {
      flagged: flaggedIn(data.cabinets.filter((r) => (r.district || "") === d.key)),
    }));
    const node = document.getElementById("districts");
    const head = el("tr");
    DISTRICT_COLUMNS.forEach(([key], i) => head.append(el("th", { scope: "col", class: i ? "num" : "" }, t(key))));
    const line = (d, name) => {
      const tr = el("tr", { "data-district": d.key });
      tr.append(el("th", { scope: "row" }, name));
      for (const [, cell] of DISTRICT_COLUMNS.slice(1)) tr.append(el("td", { class: "num" }, cell(d)));
      return tr;
    };
    const thead = el("thead");
    thead.append(head);
    const tbody = el("tbody");
    for (const d of rows) tbody.append(line(d, districtName(d.key)));
    node.replaceChildren(thead, tbody);
    if (!district && rows.length > 1) {
      const tfoot = el("tfoot");
      tfoot.append(line(Object.assign({}, data.city, { flagged: flaggedIn(data.cabinets) }), t("energy.city")));
      node.append(tfoot);
    }
  }

  function chart() {
    if (typeof window.Chart !== "function") return null;  // the table under it gives the figures
    const rows = data.districts;
    const series = [
      ["energy.series.modelled", "modelled_kwh", "#8e7cc3"],
      ["energy.series.metered", "metered_kwh", "#2e7d32"],
      ["energy.series.billed", "billed_kwh", "#ef6c00"],
    ];
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    return new window.Chart(document.getElementById("chart"), {
      type: "bar",
      data: {
        labels: rows.map((d) => districtName(d.key)),
        datasets: series.map(([key, field, colour]) => ({
          label: t(key), backgroundColor: colour, data: rows.map((d) => d[field]),
        })),
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        locale: RasdI18n.formatLocale,
        scales: {
          x: { reverse: rtl },
          y: { position: rtl ? "right" : "left", beginAtZero: true,
               title: { display: true, text: t("energy.axis.kwh") } },
        },
        plugins: {
          legend: { position: "bottom", rtl: rtl, textDirection: rtl ? "rtl" : "ltr" },
          tooltip: { rtl: rtl, textDirection: rtl ? "rtl" : "ltr" },
        },
      },
    });
  }

  // The bill against the energy measured over the bill's own period, in %.
  const gapPct = (r) => (r.billed_kwh === null || !r.bill_metered_kwh ? null
    : 100 * (r.billed_kwh - r.bill_metered_kwh) / r.bill_metered_kwh);
  const savedKwh = (r) => r.dimming_saved_kwh + (r.retrofit_saved_kwh || 0);
  const COLUMNS = [
    { key: "cabinet_id", head: "energy.col.cabinet", value: (r) => r.cabinet_id },
    { key: "district", head: "energy.col.district", value: (r) => districtName(r.district || "") },
    { key: "meter_id", head: "energy.col.meter", value: (r) => r.meter_id },
    { key: "lights", head: "energy.col.lights", value: (r) => r.lights, digits: 0 },
    { key: "modelled_kwh", head: "energy.col.modelled_kwh", value: (r) => r.modelled_kwh, digits: 0 },
    { key: "metered_kwh", head: "energy.col.metered_kwh", value: (r) => r.metered_kwh, digits: 0 },
    { key: "billed_kwh", head: "energy.col.billed_kwh", value: (r) => r.billed_kwh, digits: 0 },
    { key: "gap_pct", head: "energy.col.gap_pct", value: gapPct, digits: 1 },
    { key: "billed_dh", head: "energy.col.billed_dh", value: (r) => r.billed_dh, digits: 2 },
    { key: "recomputed_dh", head: "energy.col.recomputed_dh", value: (r) => r.recomputed_dh, digits: 2 },
    { key: "saved_kwh", head: "energy.col.saved_kwh", value: savedKwh, digits: 0 },
    { key: "saved_dh", head: "energy.col.saved_dh", value: (r) => r.saved_dh, digits: 2 },
    { key: "flags", head: "energy.col.flags", value: (r) => r.flags.length },
    { key: "dispute", head: "energy.col.dispute", value: null },
  ];
  // Flagged cabinets first, as a person checking the bills wants them.
  const sort = { key: "flags", descending: true };
  const opened = new Set();
  const onlyFlagged = document.getElementById("only-flagged");

  function compare(column) {
    const textual = column.digits === undefined;
    return (a, b) => {
      const x = column.value(a);
      const y = column.value(b);
      // Unknown figures last, whichever the direction.
      if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
      if (y === null || y === undefined) return -1;
      const order = textual && column.key !== "flags"
        ? String(x).localeCompare(String(y), RasdI18n.formatLocale, { numeric: true })
        : x - y;
      return (sort.descending ? -order : order) || a.cabinet_id.localeCompare(b.cabinet_id, "en", { numeric: true });
    };
  }

  function evidenceValue(key, value) {
    if (value === null || value === undefined || value === "") return "—";
    if (Array.isArray(value)) return value.map((v) => evidenceValue(key, v)).join(", ");
    if (value === true || value === "true") return t("energy.yes");
    if (value === false || value === "false") return t("energy.no");
    if (key.endsWith("_source")) return label("meter_source", value);
    if (typeof value === "number") {
      const digits = key.endsWith("_dh") ? 2 : 1;
      return RasdI18n.number(Math.abs(value) < 0.5 / 10 ** digits ? 0 : value, { maximumFractionDigits: digits });
    }
    return String(value);
  }

  // The evidence as a person reads it: the bill, what was measured, the gap, the rest.
  const EVIDENCE_ORDER = [
    "bill_number", "period_start", "period_end", "periods", "tariff", "billed_kwh", "estimated",
    "metered_kwh", "metered_source", "modelled_kwh", "cabinet_metered_kwh", "lights_metered_kwh",
    "line_losses_pct", "excess_kwh", "excess_pct", "excess_dh", "mean_unmetered_w", "circuits",
    "lights", "lights_reporting", "day_kwh", "day_hours", "month_kwh", "day_dh", "contracted_kw",
    "peak_kw", "peak_source", "connected_kw", "ratio", "suggested_kw", "yearly_saving_dh",
    "gap_kwh", "gap_pct", "gap_dh", "billed_dh", "recomputed_dh", "difference_dh",
    "recomputed_energy_dh", "recomputed_fixed_dh", "recomputed_power_dh", "recomputed_vat_dh",
    "billed_fixed_dh", "billed_vat_dh", "band_shares", "threshold_pct",
  ];
  const rank = (key) => (EVIDENCE_ORDER.includes(key) ? EVIDENCE_ORDER.indexOf(key) : EVIDENCE_ORDER.length);

  function evidence(row) {
    const cell = el("td", { colspan: String(COLUMNS.length) });
    for (const flag of row.flags) {
      const finding = el("div", { class: "finding", "data-code": flag.code });
      finding.append(el("h3", {}, label("flag", flag.code)));
      const list = el("dl");
      const entries = Object.entries(flag.evidence).sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
      for (const [key, value] of entries) {
        const name = t("energy.evidence." + key);
        list.append(el("dt", { "data-key": key }, name === "energy.evidence." + key ? key : name),
                    el("dd", { dir: "auto" }, evidenceValue(key, value)));
      }
      finding.append(list);
      cell.append(finding);
    }
    const tr = el("tr", { class: "evidence", id: "evidence-" + row.cabinet_id });
    tr.append(cell);
    return tr;
  }

  function disputeLinks(row) {
    const cell = el("td", { class: "dispute" });
    if (!row.flags.length) {
      cell.textContent = "—";
      return cell;
    }
    for (const lang of ["fr", "ar"]) {
      const params = new URLSearchParams({ month: month, lang: lang, token: Rasd.currentToken });
      const href = "/api/v1/energy/reconciliation/" + encodeURIComponent(row.cabinet_id) +
        "/dispute?" + params.toString();
      cell.append(el("a", { href: href, target: "_blank", rel: "noopener", hreflang: lang,
                            "data-lang": lang }, t("energy.dispute_" + lang)));
    }
    return cell;
  }

  function cabinetRow(row) {
    const tr = el("tr", { "data-cabinet": row.cabinet_id, "data-flags": row.flags.map((f) => f.code).join(" ") });
    for (const column of COLUMNS) {
      if (column.key === "cabinet_id") {
        tr.append(el("th", { scope: "row" }, row.cabinet_id));
      } else if (column.key === "flags") {
        const cell = el("td", { class: "flags" });
        if (!row.flags.length) cell.textContent = "—";
        for (const flag of row.flags) {
          const button = el("button", { type: "button", class: "flag", "data-code": flag.code,
                                        "aria-controls": "evidence-" + row.cabinet_id,
                                        "aria-expanded": String(opened.has(row.cabinet_id)) },
                            label("flag", flag.code));
          button.addEventListener("click", () => {
            if (opened.has(row.cabinet_id)) opened.delete(row.cabinet_id);
            else opened.add(row.cabinet_id);
            cabinets();
          });
          cell.append(button);
        }
        tr.append(cell);
      } else if (column.key === "dispute") {
        tr.append(disputeLinks(row));
      } else {
        const value = column.value(row);
        tr.append(el("td", column.digits === undefined ? {} : { class: "num" },
                     column.digits === undefined ? value || "—" : number(value, column.digits)));
      }
    }
    return tr;
  }

  function cabinets() {
    const node = document.getElementById("cabinets");
    const head = el("tr");
    for (const column of COLUMNS) {
      const th = el("th", { scope: "col", "data-column": column.key,
                            class: column.digits === undefined ? "" : "num" });
      if (column.value === null) {
        th.textContent = t(column.head);
      } else {
        const button = el("button", { type: "button", class: "sort" }, t(column.head));
        button.addEventListener("click", () => {
          sort.descending = sort.key === column.key ? !sort.descending : column.digits !== undefined;
          sort.key = column.key;
          cabinets();
        });
        th.append(button);
        if (sort.key === column.key) th.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
      }
      head.append(th);
    }
    const thead = el("thead");
    thead.append(head);
    const tbody = el("tbody");
    const rows = data.cabinets.filter((r) => !onlyFlagged.checked || r.flags.length);
    rows.sort(compare(COLUMNS.find((c) => c.key === sort.key)));
    for (const row of rows) {
      tbody.append(cabinetRow(row));
      if (row.flags.length && opened.has(row.cabinet_id)) tbody.append(evidence(row));
    }
    if (!rows.length) {
      const tr = el("tr");
      tr.append(el("td", { colspan: String(COLUMNS.length), class: "empty" },
                     t(onlyFlagged.checked ? "energy.none_flagged" : "common.none")));
      tbody.append(tr);
    }
    // Beside the table, not its caption: a caption scrolls away with a wide table.
    document.getElementById("cabinets-count").textContent = t("energy.cabinets_caption", {
      shown: number(rows.length), cabinets: number(data.cabinets.length),
      flagged: number(flaggedIn(data.cabinets)),
    });
    node.replaceChildren(thead, tbody);
  }
  onlyFlagged.addEventListener("change", cabinets);

  totals();
  districtsTable();
  cabinets();
  status.hidden = true;
  document.getElementById("content").hidden = false;
  window.rasdEnergy = { data: data, chart: chart() };
  document.body.dataset.ready = "true";
})();
