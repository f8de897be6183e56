import { describe, expect, it } from "vitest";
import { artFor, genreHue, hash, seeded } from "../src/lib/art";
import { Backoff } from "../src/lib/backoff";
import { dashboardKpis, playsByDay } from "../src/lib/dashboard";
import { ago, clock, prettyGenre, trackTitle } from "../src/lib/format";
import { FrameBuffer, smooth } from "../src/lib/frames";
import { sensorText } from "../src/lib/pipeline";
import { chooseTransport } from "../src/lib/player";
import { dropIndex, move, orderRequest } from "../src/lib/reorder";
import { flattenNumbers, Series } from "../src/lib/series";
import { NETWORKS, plainLanding, shareUrls, taggedUrl } from "../src/lib/share";
import { SseParser } from "../src/lib/sse";
import { requestProgress, statusText } from "../src/requests";

describe("reorder", () => {
  it("moves an item and asks the API for the shortest front", () => {
    expect(move(["a", "b", "c", "d"], 2, 0)).toEqual(["c", "a", "b", "d"]);
    expect(move(["a", "b", "c"], 0, 5)).toEqual(["b", "c", "a"]);
    expect(orderRequest(["a", "b", "c", "d"], ["c", "a", "b", "d"])).toEqual(["c", "a", "b"]);
    expect(orderRequest(["a", "b", "c"], ["a", "b", "c"])).toEqual([]);
    expect(orderRequest(["a", "b", "c"], ["b", "a", "c"])).toEqual(["b", "a"]);
  });
  it("applying the request the API's way gives the order dragged", () => {
    const before = ["a", "b", "c", "d", "e"];
    for (let from = 0; from < 5; from++) {
      for (let to = 0; to < 5; to++) {
        const after = move(before, from, to);
        const front = orderRequest(before, after);
        const applied = [...front, ...before.filter((x) => !front.includes(x))];
        expect(applied).toEqual(after);
      }
    }
  });
  it("finds the drop slot from the rows' midpoints", () => {
    expect(dropIndex([10, 30, 50], 5)).toBe(0);
    expect(dropIndex([10, 30, 50], 31)).toBe(2);
    expect(dropIndex([10, 30, 50], 99)).toBe(3);
  });
});

describe("frames", () => {
  it("finds the frame heard at a wall time, in order, and forgets old ones", () => {
    const buf = new FrameBuffer(10);
    for (let i = 0; i < 100; i++) buf.push({ t: i / 25, at: 1000 + i / 25, b: [i] });
    expect(buf.at(1000.5)?.b).toEqual([12]);
    expect(buf.at(999)).toBeNull();
    expect(buf.at(1010)).toBeNull(); // past the newest by more than the tolerance
    buf.push({ t: 0, at: 1000.51, b: [-1] }); // out of order
    expect(buf.at(1000.515)?.b).toEqual([-1]);
    buf.push({ t: 0, at: 1020, b: [7] });
    expect(buf.size).toBe(1);
  });
  it("bars rise at once and fall gradually", () => {
    let levels = smooth(new Float32Array(2), [255, 0], 1 / 60);
    expect(levels[0]).toBeCloseTo(1);
    levels = smooth(levels, [0, 0], 1 / 60);
    expect(levels[0]).toBeGreaterThan(0.9);
    expect(levels[0]).toBeLessThan(1);
  });
});

describe("art", () => {
  it("is deterministic and follows the features", () => {
    const a = artFor({ track_id: "t1", genre: "house", bpm: 124, musical_key: "A minor" });
    expect(artFor({ track_id: "t1", genre: "house", bpm: 124, musical_key: "A minor" })).toEqual(a);
    expect(artFor({ track_id: "t2", genre: "house", bpm: 124, musical_key: "A minor" })).not.toEqual(a);
    const slow = artFor({ track_id: "t1", bpm: 60 }).rings.length;
    const fast = artFor({ track_id: "t1", bpm: 180 }).rings.length;
    expect(fast).toBeGreaterThan(slow);
    expect(genreHue("house")).not.toBe(genreHue("techno"));
    const major = artFor({ track_id: "t1", musical_key: "C major" }).background[0];
    expect(major).not.toBe(artFor({ track_id: "t1", musical_key: "C minor" }).background[0]);
    for (const r of a.rings) expect(r.radius).toBeGreaterThan(0), expect(r.radius).toBeLessThanOrEqual(1);
  });
  it("hashes and draws numbers stably", () => {
    expect(hash("abc")).toBe(hash("abc"));
    const r = seeded(1);
    const xs = [r(), r(), r()];
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(seeded(1)()).toBe(xs[0]);
  });
});

describe("share", () => {
  it("tags each network's link like the API does", () => {
    const landing = "https://radio.example.com/listen?track=t1&ref=CODE1234";
    const urls = shareUrls(landing, "deep_house", "CODE1234");
    expect(Object.keys(urls)).toEqual([...NETWORKS]);
    const x = new URL(urls.x);
    expect(x.searchParams.get("text")).toBe("Listening to a deep house track on SonicForge radio");
    const tagged = new URL(x.searchParams.get("url") ?? "");
    expect(tagged.searchParams.get("utm_source")).toBe("x");
    expect(tagged.searchParams.get("utm_content")).toBe("CODE1234");
    expect(new URL(taggedUrl(landing, "email", null)).searchParams.get("utm_medium")).toBe("email");
    expect(urls.email.startsWith("mailto:?subject=")).toBe(true);
    expect(plainLanding("http://127.0.0.1:8000", "t1")).toBe("http://127.0.0.1:8000/listen?track=t1");
  });
});

describe("transport", () => {
  it("prefers hls.js, then native HLS, then MP3; a forced one wins", () => {
    expect(chooseTransport({ mse: true, nativeHls: false })).toBe("hls.js");
    expect(chooseTransport({ mse: false, nativeHls: true })).toBe("hls-native");
    expect(chooseTransport({ mse: false, nativeHls: false })).toBe("mp3");
    expect(chooseTransport({ mse: true, nativeHls: true }, "mp3")).toBe("mp3");
    expect(chooseTransport({ mse: true, nativeHls: true }, "bogus")).toBe("hls.js");
  });
});

describe("format", () => {
  it("formats clocks, genres, titles and ages", () => {
    expect(clock(65.4)).toBe("1:05");
    expect(clock(3725)).toBe("1:02:05");
    expect(clock(null)).toBe("–:––");
    expect(prettyGenre("drum_and_bass")).toBe("Drum & Bass");
    expect(trackTitle({ track_id: "abcdef123", genre: "house", bpm: 124.2, musical_key: "A minor" })).toBe("House in A minor, 124 BPM #abcdef");
    expect(ago("2026-01-01T00:00:00Z", Date.parse("2026-01-01T00:02:00Z"))).toBe("2 min ago");
  });
});

describe("backoff", () => {
  it("doubles to the cap with jitter and resets", () => {
    const b = new Backoff(1000, 8000, () => 0.5);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([1000, 2000, 4000, 8000, 8000]);
    b.reset();
    expect(b.next()).toBe(1000);
  });
});

describe("sse", () => {
  it("parses events split across chunks", () => {
    const p = new SseParser();
    expect(p.feed("retry: 3000\n\nevent: sta")).toEqual([]);
    expect(p.feed('tus\ndata: {"a":1}\n\n: keep-alive\n\ndata: x\r\ndata: y\r\n\r\n')).toEqual([
      { event: "status", data: '{"a":1}' },
      { event: "message", data: "x\ny" },
    ]);
  });
});

describe("series and dashboard", () => {
  it("scales points into a box", () => {
    const s = new Series(3);
    [1, 2, 3, 4].forEach((v, i) => s.push(i * 1000, v));
    expect(s.length).toBe(3);
    expect(s.scaled(100, 10)).toEqual([[0, 10 - 2 / 4 * 10], [50, 10 - 3 / 4 * 10], [100, 0]]);
  });
  it("reads the analytics dashboard, and any other body generically", () => {
    const body = {
      listeners_now: 3,
      today: { day: "2026-12-01", plays: 5, votes: 2, shares: 1, requests: 0, listening_hours: 1.25, peak_concurrent_listeners: 4, dau: 2, generation_count: 4, generation_pass_rate: 0.75 },
      trailing: [{ day: "2026-12-01", plays: 5 }, { day: "2026-11-30", plays: 7 }],
      generation: { tracks: 4, passed: 3, pass_rate: 0.75, rotation_size: 3 },
      outbox: { pending: 0, lag_s: null },
      experiments: [],
    };
    const kpis = Object.fromEntries(dashboardKpis(body));
    expect(kpis["Plays today"]).toBe("5");
    expect(kpis["Pass rate"]).toBe("75 %");
    expect(kpis["Outbox lag"]).toBe("none");
    expect(playsByDay(body)).toEqual([["2026-11-30", 7], ["2026-12-01", 5]]);
    expect(dashboardKpis({ a: { b: 2 } })).toEqual([["a b", "2"]]);
    expect(flattenNumbers({ x: [1, { y: 2 }] })).toEqual({ "x.0": 1, "x.1.y": 2 });
  });
});

describe("requests", () => {
  it("shows a request's way to air", () => {
    expect(requestProgress("queued")).toBeCloseTo(1 / 6);
    expect(requestProgress("aired")).toBe(1);
    expect(requestProgress("failed")).toBe(0);
    expect(statusText({ status: "failed", reason: "quota used", expected_air_at: null })).toBe("Failed: quota used");
    expect(statusText({ status: "queued_on_air", reason: null, expected_air_at: null })).toBe("Queued to play next");
    expect(statusText({ status: "mastering", reason: null, expected_air_at: null })).toBe("mastering");
  });
});

describe("sensor", () => {
  it("says what the air-feed sensor last decided", () => {
    const base = { name: "air_feed_sensor", status: "RUNNING", available: true };
    expect(sensorText({ ...base, last_tick: null })).toBe("Air-feed sensor running; it has not decided anything yet.");
    expect(sensorText({ ...base, last_tick: { status: "SKIPPED", at: null, skip_reason: "enough airtime", run_ids: [], error: null } })).toBe(
      "Air-feed sensor running; last decision: skipped: enough airtime.",
    );
    expect(sensorText({ ...base, last_tick: { status: "SUCCESS", at: null, skip_reason: null, run_ids: ["a"], error: null } })).toContain("asked for 1 run.");
    expect(sensorText({ ...base, available: false, last_tick: null })).toContain("Dagster UI");
  });
});
