/// <reference lib="webworker" />
// The service worker: the app shell (pages, scripts, styles, icons) from
// the cache when offline, the offline page for a page that was never
// cached; never the live stream (/hls, /stream.mp3, /viz) or the API.
// The build writes the shell's file list and a version into __SHELL__.

declare const self: ServiceWorkerGlobalScope;
declare const __SHELL__: { version: string; files: string[] };

const SHELL = __SHELL__;
const CACHE = `sonicforge-shell-${SHELL.version}`;
const PAGES = ["/", "/embed", "/console", "/offline"];
const LIVE = /^\/(hls\/|stream\.mp3|stream\/|viz\/|api\/|docs|redoc|openapi\.json|metrics|health|ready|live$)/;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([...PAGES, ...SHELL.files]))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("sonicforge-shell-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || LIVE.test(url.pathname)) return; // the network, untouched
  if (request.mode === "navigate") {
    event.respondWith(page(request, url));
    return;
  }
  if (url.pathname.startsWith("/assets/")) {
    event.respondWith(cacheFirst(request)); // fingerprinted: never changes
    return;
  }
  event.respondWith(staleWhileRevalidate(request, event));
});

async function page(request: Request, url: URL): Promise<Response> {
  const cache = await caches.open(CACHE);
  const key = url.pathname === "/listen" ? "/" : url.pathname;
  try {
    const fresh = await fetch(request);
    if (fresh.ok && PAGES.includes(key)) await cache.put(key, fresh.clone());
    return fresh;
  } catch {
    return (await cache.match(key)) ?? (await cache.match("/offline")) ?? Response.error();
  }
}

async function cacheFirst(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const fresh = await fetch(request);
  if (fresh.ok) await cache.put(request, fresh.clone());
  return fresh;
}

async function staleWhileRevalidate(request: Request, event: FetchEvent): Promise<Response> {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request);
  const update = fetch(request)
    .then(async (fresh) => {
      if (fresh.ok) await cache.put(request, fresh.clone());
      return fresh;
    })
    .catch(() => hit ?? Response.error());
  event.waitUntil(update.then(() => undefined));
  return hit ?? update;
}


export {};
