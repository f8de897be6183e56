// Now playing, pushed: the API's /stream/events (server-sent events) sends
// the stream status at once and at every track change. Polling
// /api/v1/stream/status is the fallback, with back-off, when the browser
// or a proxy cannot keep the event stream open.

import { Api, route, type StreamStatus } from "./api";
import { Backoff } from "./backoff";

export type StatusListener = (status: StreamStatus, via: "push" | "poll") => void;

export interface LiveOptions {
  /** EventSource constructor (injected by tests). */
  eventSource?: typeof EventSource | undefined;
  /** Give up on push after this many failed connections in a row. */
  maxPushFailures?: number;
  pollMs?: number;
}

export class LiveStatus {
  private source: EventSource | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private readonly backoff = new Backoff(2000, 60_000);
  private stopped = false;
  mode: "push" | "poll" | "idle" = "idle";
  last: StreamStatus | null = null;

  constructor(
    private readonly api: Api,
    private readonly onStatus: StatusListener,
    private readonly options: LiveOptions = {},
  ) {}

  start(): void {
    this.stopped = false;
    const ES = this.options.eventSource ?? (typeof EventSource === "undefined" ? undefined : EventSource);
    if (ES) this.connect(ES);
    else this.poll();
  }

  stop(): void {
    this.stopped = true;
    this.source?.close();
    this.source = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.mode = "idle";
  }

  /** Ask again now (after an action of ours that changes the status). */
  async refresh(): Promise<void> {
    try {
      this.deliver(await this.api.call<StreamStatus>("status", { auth: "none" }), "poll");
    } catch {
      /* the next push or poll will tell */
    }
  }

  private connect(ES: typeof EventSource): void {
    const source = new ES(route("events").path);
    this.source = source;
    source.addEventListener("status", (event) => {
      this.failures = 0;
      this.mode = "push";
      try {
        this.deliver(JSON.parse((event as MessageEvent<string>).data) as StreamStatus, "push");
      } catch {
        /* a malformed event is skipped */
      }
    });
    source.addEventListener("error", () => {
      if (this.stopped) return;
      // EventSource retries by itself while the stream was open; closed means
      // the server refused it (404, 5xx): count it and maybe fall back.
      if (source.readyState === ES.CLOSED || this.mode !== "push") {
        this.failures += 1;
        source.close();
        if (this.failures >= (this.options.maxPushFailures ?? 3)) {
          this.poll();
        } else {
          this.timer = setTimeout(() => this.connect(ES), this.backoff.next());
        }
      }
    });
  }

  private poll(): void {
    if (this.stopped) return;
    this.mode = "poll";
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      const before = this.last?.now_playing?.track_id;
      try {
        const status = await this.api.call<StreamStatus>("status", { auth: "none" });
        this.deliver(status, "poll");
        if (status.now_playing?.track_id !== before) this.backoff.reset();
      } catch {
        /* back off */
      }
      const base = this.options.pollMs ?? 5000;
      this.timer = setTimeout(() => void tick(), Math.max(base, this.backoff.next()));
    };
    void tick();
  }

  private deliver(status: StreamStatus, via: "push" | "poll"): void {
    this.last = status;
    this.onStatus(status, via);
  }
}
