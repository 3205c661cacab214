/* The crews' app's service worker (served as /crew-sw.js, scope /crew): it keeps the app shell
   (the page, its scripts, styles, fonts, messages, icons) so the app opens with no network. It
   never touches the API (/api/, /ws/): the app's own outbox and cache handle those, and no
   Background Sync is used (Safari has none). */
"use strict";

const CACHE = "rasd-crew-v1";
const SHELL = [
  "/crew",
  "/crew.webmanifest",
  "/config.json",
  "/static/crew.css",
  "/static/crew.js",
  "/static/crew-outbox.js",
  "/static/common.js",
  "/static/i18n.js",
  "/static/fonts.css",
  "/static/districts.geojson",
  "/static/vendor/leaflet/leaflet.css",
  "/static/vendor/leaflet/leaflet.js",
  "/static/vendor/intl-messageformat/intl-messageformat.esm.js",
  "/static/icons/crew.svg",
  "/static/icons/crew-192.png",
  // The messages of every locale a crew may pick (the first visit fetched its own before this
  // worker was running).
  "/i18n/fr-MA.json?audience=operator",
  "/i18n/ar-MA.json?audience=operator",
  "/i18n/zgh.json?audience=operator",
  "/i18n/en.json?audience=operator",
];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter((n) => n.startsWith("rasd-crew-") && n !== CACHE)
      .map((n) => caches.delete(n)));
  }).then(() => self.clients.claim()));
});

function kept(request, response) {
  if (response.ok && response.type === "basic") {
    const copy = response.clone();
    caches.open(CACHE).then((cache) => cache.put(request, copy));
  }
  return response;
}

self.addEventListener("fetch", function (event) {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/ws/")) return;
  if (url.pathname.startsWith("/static/")) {
    // Scripts and styles: the network when it answers (a new version is seen at once), the
    // cached copy without one.
    event.respondWith(fetch(request).then((r) => kept(request, r)).catch(
      () => caches.match(request).then((hit) => hit || Response.error())));
    return;
  }
  // The page (in the language asked), its messages and settings: the same, and a page asked
  // with ?lang= falls back to the one cached under any query.
  event.respondWith(fetch(request).then((r) => kept(request, r)).catch(function () {
    return caches.match(request).then(function (hit) {
      if (hit) return hit;
      return caches.match(request, { ignoreSearch: true }).then((any) => any || Response.error());
    });
  }));
});
