/* The public page of one asset (a pole's QR code): what it is, and a form that files an
   Open311 request for it (POST /open311/v2/requests.json with the page's public reporter key,
   at the asset's own position, its number in the description). No login, no personal data. */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const data = document.getElementById("asset").dataset;
  const show = (id) => { document.getElementById(id).hidden = false; };
  if (!data.assetId) {
    show("unknown");
    document.body.dataset.ready = "true";
    return;
  }
  document.getElementById("asset-id").textContent = data.assetId;
  document.getElementById("asset-kind").textContent = RasdI18n.label("asset", data.kind);
  document.getElementById("asset-district").textContent =
    data.district ? RasdI18n.label("district", data.district) : "—";
  show("known");
  const form = document.getElementById("report");
  if (!data.key || !data.lat || !data.lon) {
    form.hidden = true;
    show("closed");
    document.body.dataset.ready = "true";
    return;
  }
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const button = document.getElementById("send");
    button.disabled = true;  // one report per press, never two
    const failed = document.getElementById("failed");
    failed.hidden = true;
    const text = form.elements.description.value.trim();
    const body = new URLSearchParams({
      api_key: data.key,
      jurisdiction_id: data.jurisdiction,
      service_code: form.elements.service_code.value,
      lat: data.lat,
      long: data.lon,
      // Open311 has no field for the city's asset number: it leads the description, and the
      // position is the asset's own, so the linker finds that light.
      description: "[" + data.assetId + "] " + text,
    });
    try {
      const response = await fetch("/open311/v2/requests.json?locale=" +
                                   encodeURIComponent(RasdI18n.locale), { method: "POST", body: body });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer[0] && answer[0].description || String(response.status));
      const sent = document.getElementById("sent");
      sent.textContent = t("public.asset.sent", { id: answer[0].service_request_id }) + " " +
        (answer[0].service_notice || "");
      sent.dataset.requestId = answer[0].service_request_id;
      sent.hidden = false;
      form.hidden = true;
    } catch (error) {
      failed.textContent = t("public.asset.failed", { message: error.message });
      failed.hidden = false;
      button.disabled = false;
    }
  });
  document.body.dataset.ready = "true";
})();
