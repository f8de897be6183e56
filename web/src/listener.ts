// The listener page (/ and /listen): the player, now playing, the
// visualizer, votes and shares, up next and recently played,
// recommendations, track requests, and signing in.

import "./styles/listener.css";

import { ApiError, reasonText, type Me, type Page, type Played, type Queue, type Recommendation, type RecommendationList, type Share, type Track, type VoteAggregate } from "./lib/api";
import { HEARTBEAT_S, Tracker } from "./lib/analytics";
import { AuthDialog } from "./lib/auth-ui";
import { $, announce, h, maybe, show, text } from "./lib/dom";
import { ago, trackTitle } from "./lib/format";
import { installPrompt, registerServiceWorker } from "./lib/pwa";
import { NETWORK_NAMES, NETWORKS, plainLanding, shareUrls } from "./lib/share";
import { startStation } from "./lib/station";
import { mountRequests } from "./requests";

const station = startStation();
const { api, session } = station;
const auth = new AuthDialog(api);
const tracker = new Tracker(api);
let me: Me | null = null;
(window as unknown as { sonicforge: Record<string, unknown> }).sonicforge.tracker = tracker;

registerServiceWorker();
installPrompt(maybe<HTMLButtonElement>("#install"));

// -- account -------------------------------------------------------------

async function refreshAccount(): Promise<void> {
  me = null;
  if (session.signedIn) {
    try {
      me = await api.me();
    } catch {
      me = null;
    }
  }
  text($("#account"), me ? `Signed in as ${me.display_name}` : "");
  show($("#signin"), me === null);
  show($("#signout"), me !== null);
  document.documentElement.dataset.signedIn = String(me !== null);
  void loadVotes();
  void loadRecommendations();
  requests.refresh(me);
}

$("#signin").addEventListener("click", () => void auth.open().then((m) => m && refreshAccount()));
$("#signout").addEventListener("click", () => void api.logout().then(refreshAccount));

async function requireAccount(): Promise<boolean> {
  if (me) return true;
  const signed = await auth.open();
  if (signed) await refreshAccount();
  return me !== null;
}

// -- votes ---------------------------------------------------------------

const up = $<HTMLButtonElement>("#vote-up");
const down = $<HTMLButtonElement>("#vote-down");
const stars = Array.from(document.querySelectorAll<HTMLInputElement>("input[name=stars]"));

function renderVotes(agg: VoteAggregate | null): void {
  text($("#ups"), String(agg?.ups ?? 0));
  text($("#downs"), String(agg?.downs ?? 0));
  const mine = agg?.mine ?? null;
  up.setAttribute("aria-pressed", String(mine?.direction === "up"));
  down.setAttribute("aria-pressed", String(mine?.direction === "down"));
  for (const s of stars) s.checked = mine?.stars === Number(s.value);
  const avg = agg?.stars_avg;
  text($("#stars-avg"), avg ? `${avg.toFixed(1)} ★ from ${agg?.stars_count}` : "Not rated yet");
}

async function loadVotes(): Promise<void> {
  const np = station.current();
  if (!np) return renderVotes(null);
  try {
    renderVotes(await api.call<VoteAggregate>("votes", { params: { track_id: np.track_id } }));
  } catch {
    renderVotes(null);
  }
}

async function vote(body: { stars?: number; direction?: "up" | "down" }): Promise<void> {
  const np = station.current();
  if (!np || !(await requireAccount())) return;
  try {
    await api.call("vote", { body: { track_id: np.track_id, ...body }, auth: "required" });
    announce(body.direction ? `Voted ${body.direction}` : `Rated ${body.stars} stars`);
    tracker.track("vote", { ...body }, np.track_id);
    await loadVotes();
  } catch (err) {
    announce(err instanceof ApiError ? `Vote not counted: ${err.message}` : "Vote not counted");
  }
}

up.addEventListener("click", () => void vote({ direction: "up" }));
down.addEventListener("click", () => void vote({ direction: "down" }));
for (const s of stars) s.addEventListener("change", () => void vote({ stars: Number(s.value) }));

// -- share ---------------------------------------------------------------

const shareDialog = $<HTMLDialogElement>("#share-dialog");
$("#share").addEventListener("click", () => void openShare());
$("#share-close").addEventListener("click", () => shareDialog.close());
$("#share-copy").addEventListener("click", () => void copyLink());

async function openShare(): Promise<void> {
  const np = station.current();
  if (!np) return;
  let landing = plainLanding(location.origin, np.track_id);
  let code: string | null = null;
  if (me) {
    try {
      const share = await api.call<Share>("share", { body: { track_id: np.track_id }, auth: "required" });
      landing = share.landing_url;
      code = share.code;
    } catch {
      /* a plain link still works */
    }
  }
  const input = $<HTMLInputElement>("#share-link");
  input.value = landing;
  text($("#share-track"), np.title);
  const list = $("#share-networks");
  list.replaceChildren();
  const urls = shareUrls(landing, station.detail()?.genre ?? np.genre, code);
  for (const n of NETWORKS) {
    list.append(
      h("li", {}, h("a", { href: urls[n], target: "_blank", rel: "noopener noreferrer", "data-network": n }, NETWORK_NAMES[n])),
    );
  }
  text($("#share-status"), "");
  tracker.track("share_open", { code }, np.track_id);
  shareDialog.showModal();
  input.select();
}

async function copyLink(): Promise<void> {
  const input = $<HTMLInputElement>("#share-link");
  try {
    await navigator.clipboard.writeText(input.value);
    text($("#share-status"), "Link copied");
  } catch {
    input.select();
    text($("#share-status"), "Press Ctrl+C to copy the selected link");
  }
}

/** Opened from a share link: say which track it was, and count the click. */
async function showShared(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const trackId = params.get("track");
  if (!trackId) return;
  const note = $("#shared");
  const ref = params.get("ref");
  try {
    let track: Partial<Track> & { track_id: string };
    if (ref && /^[A-Za-z0-9_-]{8,24}$/.test(ref)) {
      const share = await api.call<{ track: Track }>("openShare", {
        params: { code: ref, ...(params.get("utm_source") ? { utm_source: params.get("utm_source") ?? "" } : {}) },
      });
      track = share.track;
    } else {
      track = await api.call<Track>("track", { params: { track_id: trackId } });
    }
    note.replaceChildren(
      "Shared with you: ",
      h("strong", { "data-track-id": track.track_id }, trackTitle(track)),
      `. It may be on air again soon; the station plays live.`,
    );
  } catch {
    note.textContent = "The shared track is not in the catalog any more; here is the station, live.";
  }
  note.hidden = false;
}

// -- up next and recently played -------------------------------------------

// The catalog's on-air tracks, to name queued entries (which carry only an id).
let catalog: Promise<Map<string, Track>> | null = null;
function tracksById(): Promise<Map<string, Track>> {
  catalog ??= api
    .call<Page<Track>>("tracks", { params: { limit: 100, on_air: true } })
    .then((page) => new Map(page.items.map((t) => [t.track_id, t])))
    .catch(() => new Map());
  return catalog;
}

async function loadUpNext(): Promise<void> {
  const list = $("#upnext");
  try {
    const [queue, known] = await Promise.all([api.call<Queue>("queue", { auth: "none" }), tracksById()]);
    list.replaceChildren(
      ...queue.items.slice(0, 5).map((e) =>
        h(
          "li",
          { "data-track-id": e.track_id },
          trackTitle(known.get(e.track_id) ?? { track_id: e.track_id, genre: null }),
          h("span", { class: "muted" }, ` · ${e.source}`),
        ),
      ),
    );
    if (!queue.items.length) list.append(h("li", { class: "muted" }, "The rotation picks the next track."));
  } catch {
    list.replaceChildren(h("li", { class: "muted" }, "Unavailable right now."));
  }
}

async function loadRecent(): Promise<void> {
  const list = $("#recent");
  try {
    const history = await api.call<{ items: Played[] }>("history", { params: { limit: 6 } });
    const current = station.current();
    const items = history.items.filter((p) => !(current && p.track_id === current.track_id && p.started_at === current.started_at));
    list.replaceChildren(
      ...items.slice(0, 5).map((p) =>
        h("li", { "data-track-id": p.track_id }, trackTitle(p), h("span", { class: "muted" }, ` · ${ago(p.started_at)}`)),
      ),
    );
    if (!items.length) list.append(h("li", { class: "muted" }, "Nothing yet."));
  } catch {
    list.replaceChildren(h("li", { class: "muted" }, "Unavailable right now."));
  }
}

// -- recommendations (issue 12's endpoints when present) ---------------------

async function loadRecommendations(): Promise<void> {
  const list = $("#recs");
  const note = $("#recs-note");
  const np = station.current();
  try {
    let items: Recommendation[] | null = null;
    let heading = "For you";
    if (me) {
      items = (await api.optional<RecommendationList>("personalized", { auth: "required" }))?.items ?? null;
    }
    if (!items?.length && np) {
      items = (await api.optional<RecommendationList>("similar", { params: { track_id: np.track_id } }))?.items ?? null;
      heading = "Like this one";
    }
    if (!items?.length) {
      items = (await api.optional<RecommendationList>("trending"))?.items ?? null;
      heading = "Trending";
    }
    if (!items?.length) {
      const top = await api.call<{ items: { track_id: string; genre: string; bpm: number | null; score: number }[] }>("topTracks", {
        params: { period: "week", limit: 5 },
      });
      items = top.items.map((t) => ({ track_id: t.track_id, genre: t.genre, reason: `rated ${t.score.toFixed(1)} this week` }));
      heading = "Top rated this week";
    }
    text($("#recs-h"), heading);
    list.replaceChildren(
      ...items.slice(0, 5).map((r) =>
        h(
          "li",
          { "data-track-id": r.track_id },
          trackTitle({ track_id: r.track_id, genre: r.genre ?? null, bpm: r.bpm ?? null, musical_key: r.musical_key ?? null }),
          reasonText(r) ? h("span", { class: "muted" }, ` · ${reasonText(r)}`) : null,
        ),
      ),
    );
    text(note, items.length ? "" : "Vote on a few tracks and recommendations appear here.");
  } catch {
    text(note, "Recommendations are unavailable right now.");
  }
}

// -- wiring ------------------------------------------------------------------

const requests = mountRequests(api, () => requireAccount());

station.onTrack(() => {
  void loadVotes();
  void loadUpNext();
  void loadRecent();
  void loadRecommendations();
});
station.onStatus((status) => {
  text($("#queue-length"), status.queue_length ? `(${status.queue_length} queued)` : "");
});

// -- analytics and the player_layout experiment ---------------------------------

tracker.track("page_view", { path: location.pathname, referrer: document.referrer || null }, undefined, "page");
void tracker.variant("player_layout").then((v) => {
  const layout = typeof v?.config.layout === "string" ? v.config.layout : "classic";
  document.body.dataset.layout = layout;
  document.body.dataset.variant = v?.variant ?? "";
});
let heard = 0;
station.player.audio.addEventListener("playing", () => {
  tracker.track("play", { output: station.player.transport }, station.current()?.track_id);
});
setInterval(() => {
  if (!station.player.playing) return;
  heard += 1;
  if (heard % HEARTBEAT_S === 0) {
    tracker.track("heartbeat", { seconds: HEARTBEAT_S, output: station.player.transport === "mp3" ? "mp3" : "hls" }, station.current()?.track_id);
  }
}, 1000);

// The station's public figures (issue 10's endpoint, when present).
void api.optional<{ tracks_generated: number; hours_aired: number }>("publicStats").then((s) => {
  if (s) text($("#station-stats"), `${s.tracks_generated} tracks made by AI so far · ${s.hours_aired.toFixed(1)} hours on air`);
}, () => undefined);

void refreshAccount();
void showShared();
void loadUpNext();
void loadRecent();
