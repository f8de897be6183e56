// Listener events for the analytics pipeline (when this deployment has
// POST /api/v1/analytics/track): page views, plays, listening heartbeats,
// votes and shares, batched, each with its own id so a retried batch is
// counted once. And the experiments the page takes part in.

import { Api, type RouteName } from "./api";

const ANON_KEY = "sonicforge.anon";
export const HEARTBEAT_S = 10;

export interface TrackedEvent {
  event_id: string;
  type: "track" | "page";
  event: string;
  anonymous_id?: string;
  track_id?: string;
  properties: Record<string, unknown>;
  timestamp: string;
}

export function randomHex(bytes: number): string {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** This browser's anonymous id (kept; the analytics key without an account). */
export function anonymousId(store: Pick<Storage, "getItem" | "setItem"> | null = localStorage): string {
  const kept = store?.getItem(ANON_KEY);
  if (kept && /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/.test(kept)) return kept;
  const fresh = `anon-${randomHex(10)}`;
  store?.setItem(ANON_KEY, fresh);
  return fresh;
}

export class Tracker {
  readonly anonymousId: string;
  private queue: TrackedEvent[] = [];
  private enabled: Promise<boolean>;
  private timer: ReturnType<typeof setInterval> | null = null;
  sent = 0;

  constructor(
    private readonly api: Api,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.anonymousId = anonymousId();
    this.enabled = api.has("trackEvent" as RouteName).then((has) => has === true);
    addEventListener("pagehide", () => void this.flush(true));
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) void this.flush(true);
    });
  }

  track(event: string, properties: Record<string, unknown> = {}, trackId?: string, type: "track" | "page" = "track"): void {
    const e: TrackedEvent = {
      event_id: `web-${randomHex(12)}`,
      type,
      event,
      properties,
      timestamp: this.now().toISOString(),
    };
    if (!this.api.session.signedIn) e.anonymous_id = this.anonymousId;
    if (trackId) e.track_id = trackId;
    this.queue.push(e);
    if (this.queue.length >= 50) void this.flush();
    this.timer ??= setInterval(() => void this.flush(), 15_000);
  }

  /** Send what is queued; a failed batch is kept for the next try (same ids). */
  async flush(leaving = false): Promise<void> {
    if (!this.queue.length || !(await this.enabled)) return;
    const batch = this.queue.splice(0, 500);
    try {
      const token = this.api.session.accessToken;
      const r = await fetch("/api/v1/analytics/track", {
        method: "POST",
        keepalive: leaving,
        headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ batch, sent_at: this.now().toISOString() }),
      });
      if (r.status >= 500 || r.status === 429) throw new Error(String(r.status));
      this.sent += batch.length;
    } catch {
      this.queue.unshift(...batch);
    }
  }

  /** The variant this listener gets of ``experiment`` (null without the endpoint). */
  async variant(experiment: string): Promise<{ variant: string; config: Record<string, unknown> } | null> {
    if (!(await this.api.has("experimentVariant" as RouteName))) return null;
    try {
      return await this.api.call("experimentVariant", {
        params: { experiment_id: experiment, ...(this.api.session.signedIn ? {} : { anonymous_id: this.anonymousId }) },
      });
    } catch {
      return null;
    }
  }
}
