import { afterEach, describe, expect, it, vi } from "vitest";
import { Api, type StreamStatus } from "../src/lib/api";
import { LiveStatus } from "../src/lib/live";
import { Session } from "../src/lib/session";

const STATUS = (id: string): StreamStatus => ({
  state: "on_air",
  now_playing: { track_id: id, title: id, artist: "a", genre: "house", started_at: "2026-01-01T00:00:00Z", position_s: 1, duration_s: 10, source: "rotation" },
  listeners: 1,
  uptime_s: 1,
  heartbeat_age_s: 0,
  outputs: [],
  queue_length: 0,
});

class FakeEventSource extends EventTarget {
  static CLOSED = 2;
  static instances: FakeEventSource[] = [];
  readyState = 0;
  constructor(readonly url: string) {
    super();
    FakeEventSource.instances.push(this);
  }
  close() { this.readyState = 2; }
  emit(data: StreamStatus) { this.dispatchEvent(new MessageEvent("status", { data: JSON.stringify(data) })); }
  fail() { this.readyState = 2; this.dispatchEvent(new Event("error")); }
}

afterEach(() => {
  vi.useRealTimers();
  FakeEventSource.instances = [];
});

describe("LiveStatus", () => {
  it("takes pushed status events from /stream/events", () => {
    const got: string[] = [];
    const api = new Api(new Session(null), (async () => new Response("{}")) as typeof fetch);
    const live = new LiveStatus(api, (s, via) => got.push(`${via}:${s.now_playing?.track_id}`), { eventSource: FakeEventSource as unknown as typeof EventSource });
    live.start();
    const es = FakeEventSource.instances[0];
    expect(es?.url).toBe("/stream/events");
    es?.emit(STATUS("t1"));
    es?.emit(STATUS("t2"));
    expect(got).toEqual(["push:t1", "push:t2"]);
    expect(live.mode).toBe("push");
    live.stop();
  });

  it("falls back to polling, with back-off, when the push endpoint keeps failing", async () => {
    vi.useFakeTimers();
    let polls = 0;
    const api = new Api(new Session(null), (async () => (polls++, new Response(JSON.stringify(STATUS("t1"))))) as typeof fetch);
    const got: string[] = [];
    const live = new LiveStatus(api, (_s, via) => got.push(via), { eventSource: FakeEventSource as unknown as typeof EventSource, maxPushFailures: 2, pollMs: 1000 });
    live.start();
    FakeEventSource.instances[0]?.fail();
    await vi.advanceTimersByTimeAsync(10_000);
    FakeEventSource.instances[1]?.fail();
    await vi.advanceTimersByTimeAsync(0);
    expect(live.mode).toBe("poll");
    expect(got).toContain("poll");
    const first = polls;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(polls).toBeGreaterThan(first);
    expect(polls).toBeLessThan(first + 30); // backing off, not polling every second
    live.stop();
  });
});
