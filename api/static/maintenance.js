/* The operators' maintenance KPIs of a month (GET /api/v1/maintenance/kpis): headline figures,
   repair times per district and kind (table and chart), time between failures per model and
   tender, and the warranty claims. Right to left: tables through dir, the chart mirrored. */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const label = RasdI18n.label;
  const n = (v, digits) => v === null || v === undefined ? "—" :
    RasdI18n.number(v, { maximumFractionDigits: digits === undefined ? 1 : digits });
  const pct = (v) => v === null || v === undefined ? "—" :
    RasdI18n.number(v, { style: "percent", maximumFractionDigits: 1 });
  const query = new URLSearchParams(window.location.search);
  const form = document.getElementById("period");
  for (const option of form.elements.district.options) {
    if (option.value) option.textContent = label("district", option.value);
  }
  const now = new Date();
  const month = query.get("month") ||
    new Intl.DateTimeFormat("en-CA", { timeZone: "Africa/Casablanca", year: "numeric", month: "2-digit" })
      .format(now).slice(0, 7);
  const district = query.get("district") || "";
  form.elements.month.value = month;
  form.elements.district.value = district;
  Rasd.currentToken = Rasd.token() || await Rasd.askToken(t("maintenance.login_prompt"));

  function table(id, head, rows, numeric) {
    const el = document.getElementById(id);
    if (!rows.length) {
      el.innerHTML = "<caption>" + Rasd.escape(head.caption) + "</caption><tbody><tr><td class=\"empty\">" +
        Rasd.escape(t("common.none")) + "</td></tr></tbody>";
      return;
    }
    el.innerHTML = "<caption>" + Rasd.escape(head.caption) + "</caption><thead><tr>" +
      head.columns.map((c, i) => '<th scope="col"' + (numeric[i] ? ' class="num"' : "") + ">" +
        Rasd.escape(c) + "</th>").join("") + "</tr></thead><tbody>" +
      rows.map((r) => "<tr>" + r.map((v, i) => (i === 0 ? '<th scope="row">' : "<td" +
        (numeric[i] ? ' class="num">' : ">")) + Rasd.escape(v) + (i === 0 ? "</th>" : "</td>"))
        .join("") + "</tr>").join("") + "</tbody>";
  }

  let kpis;
  try {
    const q = new URLSearchParams({ month: month });
    if (district) q.set("district", district);
    kpis = await (await Rasd.api("/api/v1/maintenance/kpis?" + q.toString())).json();
  } catch (error) {
    document.getElementById("kpi-error").textContent = t("maintenance.failed", { message: error.message });
    if (error.status === 401) {
      Rasd.forgetToken();
      Rasd.askToken(t("maintenance.login_refused")).then(() => location.reload());
    }
    document.body.dataset.ready = "true";
    return;
  }

  const figures = [
    [t("maintenance.light_points"), n(kpis.light_points, 0)],
    [t("maintenance.outages"), n(kpis.outages, 0)],
    [t("maintenance.outages_per_1000"), n(kpis.outages_per_1000, 2)],
    [t("maintenance.telemetry_first"), pct(kpis.detection.share) + " (" +
      t("maintenance.of_faults", { found: n(kpis.detection.telemetry_first, 0),
                                   faults: n(kpis.detection.faults, 0) }) + ")"],
    [t("maintenance.day_burning"), t("maintenance.day_burning_value", {
      hours: n(kpis.day_burning_hours), lights: n(kpis.day_burning_lights, 0) })],
    [t("maintenance.claims_count"), n(kpis.warranty_claims.length, 0)],
  ];
  document.getElementById("figures").innerHTML = figures.map((f) => '<div class="figure">' +
    Rasd.escape(f[0]) + "<b>" + Rasd.escape(f[1]) + "</b></div>").join("");

  const districtName = (d) => d === null ? t("maintenance.city") : label("district", d);
  table("repairs", {
    caption: t("maintenance.repairs_caption", { month: month }),
    columns: [t("maintenance.col.district"), t("maintenance.col.kind"), t("maintenance.col.repairs"),
              t("maintenance.col.p50"), t("maintenance.col.p90"), t("maintenance.col.within_48h")],
  }, kpis.repairs.map((r) => [districtName(r.district), label("kind", r.kind), n(r.repairs, 0),
                              n(r.p50_h), n(r.p90_h), pct(r.within_48h)]),
  [false, false, true, true, true, true]);

  const between = [];
  for (const [group, rows] of Object.entries(kpis.between_failures)) {
    for (const r of rows) {
      between.push([label("mtbf", group), r.group, n(r.parts, 0), n(r.failures, 0),
                    n(r.service_h, 0), n(r.mtbf_h, 0)]);
    }
  }
  table("between", {
    caption: t("maintenance.between_caption"),
    columns: [t("maintenance.col.by"), t("maintenance.col.group"), t("maintenance.col.parts"),
              t("maintenance.col.failures"), t("maintenance.col.service_h"), t("maintenance.col.mtbf_h")],
  }, between, [false, false, true, true, true, true]);

  table("claims-by-supplier", {
    caption: t("maintenance.claims_by_supplier"),
    columns: [t("maintenance.col.supplier"), t("maintenance.col.tender"), t("maintenance.col.claims")],
  }, kpis.claims_by_supplier.map((c) => [c.supplier || "—", c.project_id || "—", n(c.claims, 0)]),
  [false, false, true]);
  table("claims", {
    caption: t("maintenance.claims_caption"),
    columns: [t("maintenance.col.failed_on"), t("maintenance.col.fault"), t("maintenance.col.asset"),
              t("maintenance.col.model"), t("maintenance.col.serial"), t("maintenance.col.supplier"),
              t("maintenance.col.tender"), t("maintenance.col.warranty_until")],
  }, kpis.warranty_claims.map((c) => [c.failed_on, label("kind", c.fault), c.asset_id,
                                      c.model_id || "—", c.serial || "—", c.supplier || "—",
                                      c.project_id || "—", c.warranty_until]),
  [false, false, false, false, false, false, false, false]);

  // The chart: p50 and p90 of each district's repairs, per kind (the city-wide rows aside).
  const rows = kpis.repairs.filter((r) => r.district !== null);
  const rtl = RasdI18n.rtl;
  window.rasdMaintenance = {
    kpis: kpis,
    chart: new Chart(document.getElementById("repairs-chart"), {
      type: "bar",
      data: {
        labels: rows.map((r) => label("district", r.district) + " · " + label("kind", r.kind)),
        datasets: [
          { label: t("maintenance.col.p50"), backgroundColor: "#5b8def",
            data: rows.map((r) => r.p50_h) },
          { label: t("maintenance.col.p90"), backgroundColor: "#e4572e",
            data: rows.map((r) => r.p90_h) },
        ],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        locale: RasdI18n.formatLocale,
        scales: {
          x: { reverse: rtl },
          y: { position: rtl ? "right" : "left", beginAtZero: true,
               title: { display: true, text: t("maintenance.hours") } },
        },
        plugins: {
          legend: { rtl: rtl, textDirection: rtl ? "rtl" : "ltr" },
          tooltip: { rtl: rtl, textDirection: rtl ? "rtl" : "ltr" },
        },
      },
    }),
  };
  document.body.dataset.ready = "true";
})();
