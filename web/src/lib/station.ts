// What the listener page and the embeddable player share: the player, the
// live status, the visualizer feed and the now-playing card.

import { Api, type NowPlaying, type StreamStatus, type TrackDetail } from "./api";
import { drawArt, genreHue } from "./art";
import { $, announce, maybe, text } from "./dom";
import { clock, prettyGenre } from "./format";
import { FrameBuffer, VizFeed } from "./frames";
import { LiveStatus } from "./live";
import { StationPlayer, type PlayerState, type Transport } from "./player";
import { Session } from "./session";
import { Visualizer } from "./visualizer";

export interface StationView {
  api: Api;
  session: Session;
  player: StationPlayer;
  live: LiveStatus;
  feed: VizFeed;
  visualizer: Visualizer | null;
  current: () => NowPlaying | null;
  detail: () => TrackDetail | null;
  onTrack: (fn: (np: NowPlaying | null, detail: TrackDetail | null) => void) => void;
  onStatus: (fn: (status: StreamStatus) => void) => void;
}

const STATE_TEXT: Record<StreamStatus["state"], string> = {
  on_air: "On air",
  stalled: "Reconnecting",
  offline: "Off air",
};

export function startStation(): StationView {
  const session = new Session();
  const api = new Api(session);
  const params = new URLSearchParams(location.search);
  const audio = $<HTMLAudioElement>("#audio");
  const playButton = $<HTMLButtonElement>("#play");
  const transportEl = maybe("#transport");

  const trackListeners: ((np: NowPlaying | null, d: TrackDetail | null) => void)[] = [];
  const statusListeners: ((s: StreamStatus) => void)[] = [];
  let current: NowPlaying | null = null;
  let detail: TrackDetail | null = null;
  let statusAt = performance.now();

  const player = new StationPlayer(
    audio,
    {
      onState: (state: PlayerState, why?: string) => {
        const playing = state === "playing" || state === "loading";
        playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
        playButton.dataset.state = state;
        text(playButton, playing ? "Pause" : "Play");
        document.documentElement.dataset.player = state;
        if (state === "playing") {
          feed.start();
          visualizer?.start();
        } else if (state === "paused" || state === "error") {
          visualizer?.stop();
          feed.stop(); // no spectrum is needed until the next Play
        }
        if (state === "error" && why) announce(`Playback failed: ${why}`);
      },
      onTransport: (t: Transport) => {
        document.documentElement.dataset.transport = t;
        if (transportEl) text(transportEl, t === "mp3" ? "MP3" : "HLS");
      },
      onLevel: (kbps) => {
        if (transportEl) text(transportEl, `HLS ${kbps} kbps`);
      },
    },
    params.get("transport"),
  );
  playButton.addEventListener("click", () => void player.toggle());
  const volume = maybe<HTMLInputElement>("#volume");
  if (volume) {
    const kept = Number(localStorage.getItem("sonicforge.volume") ?? "0.8");
    volume.value = String(Number.isFinite(kept) ? kept : 0.8);
    player.setVolume(Number(volume.value));
    volume.addEventListener("input", () => {
      player.setVolume(Number(volume.value));
      localStorage.setItem("sonicforge.volume", volume.value);
    });
  }
  // Space toggles play anywhere outside a text field (keyboard-only use).
  document.addEventListener("keydown", (e) => {
    const target = e.target as HTMLElement;
    if (e.key === " " && !/^(INPUT|TEXTAREA|SELECT|BUTTON|A)$/.test(target.tagName) && !target.isContentEditable) {
      e.preventDefault();
      void player.toggle();
    }
  });

  const buffer = new FrameBuffer();
  const feed = new VizFeed(buffer);
  const vizCanvas = maybe<HTMLCanvasElement>("#viz");
  const visualizer = vizCanvas ? new Visualizer(vizCanvas, buffer, player) : null;
  window.addEventListener("resize", () => visualizer?.resize());
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) visualizer?.stop();
    else if (player.playing) visualizer?.start();
  });

  const onStatus = (status: StreamStatus): void => {
    statusAt = performance.now();
    const pill = maybe("#onair");
    if (pill) {
      text(pill, STATE_TEXT[status.state]);
      pill.dataset.state = status.state;
    }
    const listeners = maybe("#listeners");
    if (listeners) text(listeners, `${status.listeners} listening`);
    const np = status.now_playing;
    const changed = np?.track_id !== current?.track_id || np?.started_at !== current?.started_at;
    current = np;
    for (const fn of statusListeners) fn(status);
    if (changed) void showTrack(np);
  };

  const showTrack = async (np: NowPlaying | null): Promise<void> => {
    const title = $("#np-title");
    text(title, np ? np.title : "Nothing on air right now");
    title.dataset.trackId = np?.track_id ?? "";
    document.title = np ? `${np.title} · SonicForge` : "SonicForge";
    detail = null;
    renderMeta(np, null);
    if (np) announce(`Now playing: ${np.title}`);
    if (np) {
      try {
        detail = await api.call<TrackDetail>("track", { params: { track_id: np.track_id } });
      } catch {
        detail = null; // a track not in the catalog yet: what the stream says is enough
      }
      if (current?.track_id !== np.track_id) return; // the track changed meanwhile
      renderMeta(np, detail);
    }
    for (const fn of trackListeners) fn(np, detail);
  };

  const renderMeta = (np: NowPlaying | null, d: TrackDetail | null): void => {
    const meta = maybe("#np-meta");
    if (meta) {
      const bits = np ? [prettyGenre(d?.genre ?? np.genre)] : [];
      if (d) bits.push(`${Math.round(d.bpm)} BPM`, d.musical_key, `made by ${d.model_name} ${d.model_version}`);
      text(meta, bits.join(" · "));
    }
    const art = maybe<HTMLCanvasElement>("#art");
    if (art && np) {
      drawArt(art, { track_id: np.track_id, genre: d?.genre ?? np.genre, bpm: d?.bpm ?? null, musical_key: d?.musical_key ?? null });
      art.setAttribute("aria-label", `Cover art for ${np.title}`);
    }
    visualizer?.setHue(genreHue(d?.genre ?? np?.genre));
  };

  // The progress bar runs on the status's position, extrapolated locally.
  const bar = maybe("#np-bar");
  const time = maybe("#np-time");
  if (bar || time) {
    setInterval(() => {
      if (!current) return;
      const pos = Math.min(current.duration_s, current.position_s + (performance.now() - statusAt) / 1000);
      if (bar) bar.style.transform = `scaleX(${(pos / Math.max(1, current.duration_s)).toFixed(3)})`;
      if (time) text(time, `${clock(pos)} / ${clock(current.duration_s)}`);
    }, 1000);
  }

  const live = new LiveStatus(api, (status, via) => {
    document.documentElement.dataset.live = via;
    onStatus(status);
  });
  live.start();
  // For tests, benchmarks and the curious: the page's live objects.
  (window as unknown as { sonicforge: object }).sonicforge = { player, live, feed, visualizer, buffer };

  return {
    api,
    session,
    player,
    live,
    feed,
    visualizer,
    current: () => current,
    detail: () => detail,
    onTrack: (fn) => trackListeners.push(fn),
    onStatus: (fn) => statusListeners.push(fn),
  };
}
