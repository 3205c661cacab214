/* The crews' app's own storage, in IndexedDB: the outbox of actions not yet accepted by the
   server (each with its Idempotency-Key, replayed in order until the server answers) and the
   last orders list, for reading offline. No Background Sync API (Safari has none): the app
   replays on start, on the `online` event, on a timer and on "sync now". */
"use strict";

window.RasdOutbox = (function () {
  const DB = "rasd-crew";
  const VERSION = 1;
  let opened = null;

  function request(req) {
    return new Promise(function (resolve, reject) {
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function db() {
    if (!opened) {
      opened = new Promise(function (resolve, reject) {
        const req = indexedDB.open(DB, VERSION);
        req.onupgradeneeded = function () {
          const base = req.result;
          // seq keeps the order actions were taken in: a start is replayed before its complete.
          if (!base.objectStoreNames.contains("outbox")) {
            base.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true });
          }
          if (!base.objectStoreNames.contains("cache")) base.createObjectStore("cache");
        };
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { reject(req.error); };
      });
    }
    return opened;
  }

  async function store(name, mode) {
    return (await db()).transaction(name, mode).objectStore(name);
  }

  /** Every queued action, oldest first. */
  async function all() {
    return request((await store("outbox", "readonly")).getAll());
  }

  /** Queue an action; it keeps its idempotency key through every replay. */
  async function add(action) {
    const entry = Object.assign({
      key: crypto.randomUUID(), state: "pending", attempts: 0, error: null,
      created_at: new Date().toISOString(),
    }, action);
    entry.seq = await request((await store("outbox", "readwrite")).add(entry));
    return entry;
  }

  async function put(entry) {
    return request((await store("outbox", "readwrite")).put(entry));
  }

  async function remove(seq) {
    return request((await store("outbox", "readwrite")).delete(seq));
  }

  async function cacheGet(key) {
    return request((await store("cache", "readonly")).get(key));
  }

  async function cacheSet(key, value) {
    return request((await store("cache", "readwrite")).put(value, key));
  }

  const PERMANENT = new Set([400, 403, 404, 409, 413, 422]);

  /**
   * Send the queued actions in order with `send(entry)` (a fetch promise). A network failure or
   * a server that cannot answer now (5xx, 429) stops the replay, to be tried again later; a
   * refusal (409, 422, ...) marks that action failed, shown to the crew, and the replay goes on.
   * One replay at a time: a second call while one runs waits for it.
   */
  let running = null;
  function replay(send, onChange) {
    if (running) return running;
    running = (async function () {
      try {
        return await replayAll(send, onChange);
      } finally {
        running = null;
      }
    })();
    return running;
  }

  async function replayAll(send, onChange) {
    let sent = 0;
    let stopped = null;
    for (const entry of await all()) {
      if (entry.state === "failed") continue;
      entry.state = "sending";
      entry.attempts += 1;
      await put(entry);
      onChange();
      let response;
      try {
        response = await send(entry);
      } catch (error) {
        entry.state = "pending";
        entry.error = null;
        await put(entry);
        stopped = "offline";
        break;
      }
      if (response.ok) {
        await remove(entry.seq);
        sent += 1;
        onChange(entry, await response.json());
        continue;
      }
      let message = response.status + " " + response.statusText;
      try { message = (await response.json()).error.message; } catch (ignored) { /* not JSON */ }
      entry.error = message;
      if (response.status === 401) {
        entry.state = "pending";
        await put(entry);
        stopped = "token";
        break;
      }
      if (PERMANENT.has(response.status)) {
        entry.state = "failed";
        await put(entry);
        onChange(entry);
        continue;
      }
      entry.state = "pending";
      await put(entry);
      stopped = "server";
      break;
    }
    onChange();
    return { sent: sent, stopped: stopped };
  }

  return { all, add, put, remove, replay, cacheGet, cacheSet };
})();
