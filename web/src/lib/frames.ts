// The spectrum feed: frames of 32 bands (0-255) stamped with the wall time
// their audio airs (`at`, the clock of HLS PROGRAM-DATE-TIME). They arrive
// as they air at the streamer; a player hears them later (the HLS
// latency), so they are buffered and looked up by the time of the audio
// the listener hears now.

export interface Frame {
  t: number;
  at: number;
  b: number[];
  title?: string;
}

export class FrameBuffer {
  private frames: Frame[] = [];

  constructor(private readonly keepS = 90) {}

  get size(): number {
    return this.frames.length;
  }

  get newest(): Frame | undefined {
    return this.frames[this.frames.length - 1];
  }

  push(frame: Frame): void {
    const last = this.newest;
    if (last && frame.at < last.at) {
      // Out of order (a reconnect replayed some): insert in place.
      const i = this.indexAfter(frame.at);
      this.frames.splice(i, 0, frame);
    } else {
      this.frames.push(frame);
    }
    const cutoff = frame.at - this.keepS;
    if ((this.frames[0]?.at ?? cutoff) < cutoff) {
      this.frames.splice(0, this.indexAfter(cutoff));
    }
  }

  /** The latest frame at or before wall time ``at`` (seconds), if it is within ``toleranceS``. */
  at(at: number, toleranceS = 0.25): Frame | null {
    const i = this.indexAfter(at) - 1;
    const frame = this.frames[i];
    if (!frame || at - frame.at > toleranceS) return null;
    return frame;
  }

  private indexAfter(at: number): number {
    let lo = 0;
    let hi = this.frames.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.frames[mid] as Frame).at <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Bars that rise at once and fall smoothly (a peak meter's ballistics). */
export function smooth(previous: Float32Array, target: readonly number[], dtS: number, fallPerS = 3): Float32Array {
  const out = previous.length === target.length ? previous : new Float32Array(target.length);
  const fall = Math.min(1, fallPerS * dtS);
  for (let i = 0; i < target.length; i++) {
    const v = (target[i] ?? 0) / 255;
    const p = out[i] ?? 0;
    out[i] = v >= p ? v : p - (p - v) * fall;
  }
  return out;
}

export type FeedState = "connecting" | "open" | "closed";

/** The feed over WebSocket (/viz/ws), with SSE (/viz/events) as the fallback. */
export class VizFeed {
  private socket: WebSocket | null = null;
  private events: EventSource | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private stopped = true;
  state: FeedState = "closed";
  received = 0;

  constructor(
    readonly buffer: FrameBuffer,
    private readonly onTitle: (title: string) => void = () => {},
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    this.socket?.close();
    this.events?.close();
    this.socket = null;
    this.events = null;
    if (this.retry) clearTimeout(this.retry);
    this.state = "closed";
  }

  private lastTitle = "";

  private take(raw: string): void {
    try {
      const frame = JSON.parse(raw) as Frame;
      if (typeof frame.at !== "number" || !Array.isArray(frame.b)) return;
      this.received += 1;
      this.failures = 0;
      this.buffer.push(frame);
      if (frame.title && frame.title !== this.lastTitle) {
        this.lastTitle = frame.title;
        this.onTitle(frame.title);
      }
    } catch {
      /* skip a malformed frame */
    }
  }

  private open(): void {
    if (this.stopped) return;
    this.state = "connecting";
    if (typeof WebSocket !== "undefined" && this.failures < 3) {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${proto}//${location.host}/viz/ws`);
      this.socket = ws;
      ws.onopen = () => (this.state = "open");
      ws.onmessage = (e) => this.take(String(e.data));
      ws.onclose = () => this.again();
      return;
    }
    const es = new EventSource("/viz/events");
    this.events = es;
    es.onopen = () => (this.state = "open");
    es.onmessage = (e) => this.take(String(e.data));
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) this.again();
    };
  }

  private again(): void {
    this.socket = null;
    this.events = null;
    if (this.stopped) return;
    this.state = "closed";
    this.failures += 1;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.failures, 5));
    this.retry = setTimeout(() => this.open(), delay);
  }
}
