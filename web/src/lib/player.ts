// The station player: HLS (the AAC ladder, adaptive) through hls.js where
// the browser has Media Source Extensions, native HLS where the browser
// plays it itself (Safari, iOS), and the MP3 mount as the fallback when
// HLS fails. hls.js is loaded on the first Play, so the page paints first.

import type HlsType from "hls.js/light";

export type Transport = "hls.js" | "hls-native" | "mp3";
export type PlayerState = "idle" | "loading" | "playing" | "paused" | "error";

export const HLS_URL = "/hls/master.m3u8";
export const MP3_URL = "/stream.mp3";

export interface PlayerEvents {
  onState?: (state: PlayerState, detail?: string) => void;
  onTransport?: (transport: Transport) => void;
  onLevel?: (kbps: number) => void;
}

/** Which transport to try first on this browser (``forced`` from ?transport=). */
export function chooseTransport(
  caps: { mse: boolean; nativeHls: boolean },
  forced?: string | null,
): Transport {
  if (forced === "mp3" || forced === "hls.js" || forced === "hls-native") return forced;
  if (caps.nativeHls && !caps.mse) return "hls-native";
  if (caps.mse) return "hls.js";
  return caps.nativeHls ? "hls-native" : "mp3";
}

/** hls.js settings for a live radio: start near the live edge, catch up gently. */
export const HLS_CONFIG = {
  lowLatencyMode: false,
  liveSyncDurationCount: 2,
  liveMaxLatencyDurationCount: 5,
  maxLiveSyncPlaybackRate: 1.05,
  maxBufferLength: 30,
  backBufferLength: 30,
  enableWorker: true,
  startLevel: -1,
  manifestLoadingMaxRetry: 2,
  levelLoadingMaxRetry: 3,
  fragLoadingMaxRetry: 3,
} as const;

export class StationPlayer {
  readonly audio: HTMLAudioElement;
  transport: Transport | null = null;
  state: PlayerState = "idle";
  private hls: HlsType | null = null;
  private sid: string;
  private mp3StartedAt = 0;

  constructor(
    audio: HTMLAudioElement,
    private readonly events: PlayerEvents = {},
    private readonly forced: string | null = null,
  ) {
    this.audio = audio;
    this.sid = sessionKey();
    audio.addEventListener("playing", () => this.set("playing"));
    audio.addEventListener("pause", () => this.set("paused"));
    audio.addEventListener("waiting", () => this.set("loading"));
    audio.addEventListener("error", () => {
      if (!audio.getAttribute("src")) return; // emptied on purpose (pause, switch)
      if (this.transport === "hls-native") void this.fallBack("native HLS failed");
      else if (this.transport === "mp3") this.set("error", "the MP3 stream failed");
    });
  }

  get playing(): boolean {
    return this.state === "playing";
  }

  /** Start (or resume) at the live edge. */
  async play(): Promise<void> {
    if (this.transport && this.state === "paused") {
      // Live radio: resuming means rejoining now, not where we stopped.
      this.stopMedia();
    }
    this.set("loading");
    const caps = {
      mse: typeof MediaSource !== "undefined" && MediaSource.isTypeSupported('audio/mp4; codecs="mp4a.40.2"'),
      nativeHls: this.audio.canPlayType("application/vnd.apple.mpegurl") !== "",
    };
    const first = chooseTransport(caps, this.forced);
    try {
      if (first === "hls.js") await this.startHlsJs();
      else if (first === "hls-native") await this.startNative();
      else await this.startMp3();
    } catch (err) {
      await this.fallBack(err instanceof Error ? err.message : String(err));
    }
  }

  pause(): void {
    this.audio.pause();
    this.hls?.stopLoad();
    if (this.transport === "mp3") {
      // An idle MP3 connection would keep downloading: drop it.
      this.audio.removeAttribute("src");
      this.audio.load();
    }
    this.set("paused");
  }

  toggle(): Promise<void> {
    if (this.playing || this.state === "loading") {
      this.pause();
      return Promise.resolve();
    }
    return this.play();
  }

  setVolume(v: number): void {
    this.audio.volume = Math.max(0, Math.min(1, v));
  }

  /**
   * Wall time (epoch seconds) of the audio the listener hears now, for the
   * visualizer: HLS from PROGRAM-DATE-TIME, MP3 from its buffer.
   */
  audibleTime(now: number = Date.now()): number | null {
    if (this.state !== "playing") return null;
    if (this.hls) {
      const date = this.hls.playingDate;
      return date ? date.getTime() / 1000 : null;
    }
    const a = this.audio as HTMLAudioElement & { getStartDate?: () => Date };
    if (this.transport === "hls-native" && a.getStartDate) {
      const start = a.getStartDate().getTime();
      if (Number.isFinite(start)) return start / 1000 + a.currentTime;
    }
    if (this.transport === "mp3") {
      const b = this.audio.buffered;
      const ahead = b.length ? b.end(b.length - 1) - this.audio.currentTime : 0;
      // The mount sends about half a second per chunk, and the server holds one.
      return now / 1000 - ahead - 0.75;
    }
    return null;
  }

  private async startHlsJs(): Promise<void> {
    const { default: Hls } = await import("hls.js/light");
    if (!Hls.isSupported()) throw new Error("hls.js is not supported here");
    this.stopMedia();
    const hls = new Hls({
      ...HLS_CONFIG,
      xhrSetup: (xhr: XMLHttpRequest, url: string) => {
        const u = new URL(url, location.href);
        if (u.origin === location.origin && !u.searchParams.has("sid")) u.searchParams.set("sid", this.sid);
        xhr.open("GET", u.toString(), true);
      },
    });
    this.hls = hls;
    this.transport = "hls.js";
    this.events.onTransport?.("hls.js");
    await new Promise<void>((resolve, reject) => {
      let started = false;
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!data.fatal) return;
        if (!started) {
          reject(new Error(`HLS failed: ${data.details}`));
          return;
        }
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
        } else {
          void this.fallBack(`HLS failed: ${data.details}`);
        }
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
        const level = hls.levels[data.level];
        if (level) this.events.onLevel?.(Math.round(level.bitrate / 1000));
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        started = true;
        this.audio.play().then(resolve, reject);
      });
      hls.loadSource(HLS_URL);
      hls.attachMedia(this.audio);
    });
  }

  private async startNative(): Promise<void> {
    this.stopMedia();
    this.transport = "hls-native";
    this.events.onTransport?.("hls-native");
    this.audio.src = `${HLS_URL}?sid=${this.sid}`;
    await this.audio.play();
  }

  private async startMp3(): Promise<void> {
    this.stopMedia();
    this.transport = "mp3";
    this.events.onTransport?.("mp3");
    this.mp3StartedAt = Date.now();
    // A fresh URL each time: a cached or half-read body is never reused.
    this.audio.src = `${MP3_URL}?t=${this.mp3StartedAt}`;
    await this.audio.play();
  }

  private async fallBack(why: string): Promise<void> {
    if (this.transport === "mp3") {
      this.set("error", why);
      return;
    }
    console.warn(`${why}; falling back to the MP3 stream`);
    try {
      await this.startMp3();
    } catch (err) {
      this.set("error", err instanceof Error ? err.message : String(err));
    }
  }

  private stopMedia(): void {
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    this.audio.removeAttribute("src");
    this.audio.load();
  }

  private set(state: PlayerState, detail?: string): void {
    if (state === this.state && !detail) return;
    this.state = state;
    this.events.onState?.(state, detail);
  }
}

/** The key the HLS endpoints count one listener by (kept for this tab). */
function sessionKey(): string {
  const KEY = "sonicforge.sid";
  try {
    const kept = sessionStorage.getItem(KEY);
    if (kept && /^[A-Za-z0-9_-]{8,64}$/.test(kept)) return kept;
    const fresh = randomKey();
    sessionStorage.setItem(KEY, fresh);
    return fresh;
  } catch {
    return randomKey();
  }
}

function randomKey(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
