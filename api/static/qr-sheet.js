/* The printable sheet of a circuit's QR codes: its poles (and wall fittings) from the register,
   each code drawn by the server (/a/{asset_id}/qr.svg, the address of the asset's public
   page), its number printed under it. */
"use strict";

(async function () {
  await RasdI18n.ready;
  const t = RasdI18n.t;
  const circuit = new URLSearchParams(window.location.search).get("circuit");
  const form = document.getElementById("choose");
  document.getElementById("print").onclick = function () { window.print(); };
  const sheet = document.getElementById("sheet");
  const done = () => { document.body.dataset.ready = "true"; };
  if (!circuit) { done(); return; }
  form.elements.circuit.value = circuit;
  Rasd.currentToken = Rasd.token() || await Rasd.askToken(t("maintenance.login_prompt"));
  const items = [];
  try {
    let after = null;
    do {
      const query = new URLSearchParams({ parent_id: circuit, limit: "1000" });
      if (after) query.set("after", after);
      const page = await (await Rasd.api("/api/v1/assets?" + query.toString())).json();
      items.push(...page.items.filter((a) => a.kind === "pole" || a.kind === "luminaire"));
      after = page.next_after;
    } while (after);
  } catch (error) {
    document.getElementById("sheet-error").textContent = t("maintenance.failed", { message: error.message });
    if (error.status === 401) {
      Rasd.forgetToken();
      Rasd.askToken(t("maintenance.login_refused")).then(() => location.reload());
    }
    done();
    return;
  }
  document.getElementById("sheet-title").textContent =
    t("maintenance.qr.sheet", { circuit: circuit, count: items.length });
  sheet.replaceChildren(...items.map(function (asset) {
    const figure = document.createElement("figure");
    figure.className = "qr";
    figure.dataset.assetId = asset.asset_id;
    const img = document.createElement("img");
    img.src = "/a/" + encodeURIComponent(asset.asset_id) + "/qr.svg";
    img.alt = asset.asset_id;
    const caption = document.createElement("figcaption");
    const id = document.createElement("b");
    id.dir = "ltr";
    id.textContent = asset.asset_id;
    caption.append(id, " " + RasdI18n.label("asset", asset.kind));
    figure.append(img, caption);
    return figure;
  }));
  if (!items.length) {
    sheet.innerHTML = '<p class="empty">' + Rasd.escape(t("common.none")) + "</p>";
  }
  await Promise.all([...sheet.querySelectorAll("img")].map((img) => img.decode().catch(() => null)));
  done();
})();
