/* The pages' translation layer: the messages of the page's locale (ICU MessageFormat, from the
   server's gettext catalogues at /i18n/<locale>.json) formatted by intl-messageformat; the
   elements marked data-i18n translated; a language switcher that remembers the choice in the
   rasd_lang cookie (the server reads it too). The server has already negotiated the locale
   (?lang=, cookie, Accept-Language) and set <html lang dir>. Plain browser JavaScript. */
"use strict";

window.RasdI18n = (function () {
  const root = document.documentElement;
  const locale = root.lang || "fr-MA";
  const audience = root.dataset.audience || "operator";
  const COOKIE = "rasd_lang";
  // Browsers may lack CLDR's Tamazight data; its numbers are written as French ones are
  // (1 234,5), so French (Morocco) stands in for formatting only.
  const formatLocales = locale === "zgh" ? ["zgh", "fr-MA"] : [locale];
  const formatLocale = new Intl.NumberFormat(formatLocales).resolvedOptions().locale;
  const cache = new Map();
  let messages = {};
  let MessageFormat = null;

  /** The message `key` with `values` filled in (ICU plurals: Arabic has six forms). */
  function t(key, values) {
    const text = messages[key];
    if (text === undefined) return key;
    let format = cache.get(key);
    if (!format) {
      format = new MessageFormat(text, formatLocales);
      cache.set(key, format);
    }
    return String(format.format(values || {}));
  }

  /** The human label of a machine code (alert kind, fault, state, ...): the code if none. */
  function label(group, code) {
    const key = "label." + group + "." + code;
    return messages[key] === undefined ? String(code) : t(key);
  }

  /** A number as the locale writes it (ar-MA: Western digits, decimal comma). */
  function number(value, options) {
    const settings = Object.assign({ numberingSystem: "latn" }, options || {});
    return new Intl.NumberFormat(formatLocales, settings).format(value);
  }

  /** How long ago, in words ("il y a 3 min", "منذ دقيقتين"). */
  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 90) return t("common.ago.seconds", { n: s });
    if (s < 5400) return t("common.ago.minutes", { n: Math.round(s / 60) });
    if (s < 129600) return t("common.ago.hours", { n: Math.round(s / 3600) });
    return t("common.ago.days", { n: Math.round(s / 86400) });
  }

  function translateDocument() {
    for (const el of document.querySelectorAll("[data-i18n]")) {
      el.textContent = t(el.dataset.i18n);
    }
    for (const [attribute, data] of [["placeholder", "i18nPlaceholder"], ["title", "i18nTitle"],
                                     ["aria-label", "i18nAriaLabel"]]) {
      for (const el of document.querySelectorAll("[data-" + attribute.replace(/^/, "i18n-") + "]")) {
        el.setAttribute(attribute, t(el.dataset[data]));
      }
    }
  }

  function remember(code) {
    document.cookie = COOKIE + "=" + encodeURIComponent(code) +
      "; path=/; max-age=31536000; SameSite=Lax";
  }

  /** A <select> of the locales in every element marked data-lang-switch. */
  function switcher(locales) {
    for (const holder of document.querySelectorAll("[data-lang-switch]")) {
      const wrap = document.createElement("label");
      wrap.className = "lang-switch";
      wrap.append(t("lang.label") + " ");
      const select = document.createElement("select");
      select.id = "lang-select";
      for (const item of locales) {
        const option = document.createElement("option");
        option.value = item.code;
        option.textContent = item.name;
        option.lang = item.code;
        option.selected = item.code === locale;
        select.append(option);
      }
      select.addEventListener("change", function () {
        remember(select.value);
        const url = new URL(window.location.href);
        url.searchParams.set("lang", select.value);
        window.location.assign(url.toString());
      });
      wrap.append(select);
      holder.replaceChildren(wrap);
    }
  }

  async function load() {
    const [module, answer] = await Promise.all([
      import("/static/vendor/intl-messageformat/intl-messageformat.esm.js"),
      fetch("/i18n/" + encodeURIComponent(locale) + ".json?audience=" + audience),
    ]);
    MessageFormat = module.IntlMessageFormat;
    const catalogue = await answer.json();
    messages = catalogue.messages;
    // A choice made through ?lang= is remembered like one made with the switcher.
    if (new URLSearchParams(window.location.search).has("lang")) remember(locale);
    translateDocument();
    switcher(catalogue.locales);
    root.dataset.i18nReady = "true";
  }

  const ready = load();
  return { ready, t, label, number, ago, locale, formatLocale, rtl: root.dir === "rtl" };
})();
