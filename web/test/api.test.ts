import { describe, expect, it } from "vitest";
import { Api, ApiError, buildPath, OPTIONAL_ROUTES, route, ROUTES } from "../src/lib/api";
import { Session, type KeyValueStore } from "../src/lib/session";

class MemoryStore implements KeyValueStore {
  data = new Map<string, string>();
  getItem(k: string) { return this.data.get(k) ?? null; }
  setItem(k: string, v: string) { this.data.set(k, v); }
  removeItem(k: string) { this.data.delete(k); }
}

function json(status: number, body: unknown): Response {
  return new Response(body === null ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

describe("routes", () => {
  it("fills path parameters and puts the rest in the query", () => {
    expect(buildPath("/api/v1/tracks/{track_id}", { track_id: "t 1", x: 2, y: undefined })).toBe("/api/v1/tracks/t%201?x=2");
    expect(() => buildPath("/a/{id}", {})).toThrow(/missing path parameter id/);
  });
  it("names every route with a method and an absolute path", () => {
    for (const spec of [...Object.values(ROUTES), ...Object.values(OPTIONAL_ROUTES)]) {
      expect(spec).toMatch(/^(GET|POST|PUT|PATCH|DELETE) \/[\w/{}.-]*$/);
    }
    expect(route("vote")).toEqual({ method: "POST", path: "/api/v1/vote" });
  });
});

describe("Api", () => {
  it("sends the token, refreshes once on 401 and retries", async () => {
    const store = new MemoryStore();
    const session = new Session(store, () => 0);
    session.store({ access_token: "old", refresh_token: "r1", expires_in: 900, refresh_expires_in: 1000 });
    const seen: string[] = [];
    const fetcher = async (url: RequestInfo | URL, init?: RequestInit) => {
      const auth = (init?.headers as Record<string, string>)?.Authorization ?? "";
      seen.push(`${init?.method} ${String(url)} ${auth}`);
      if (String(url).endsWith("/auth/refresh")) return json(200, { access_token: "new", refresh_token: "r2", expires_in: 900, refresh_expires_in: 1 });
      return auth === "Bearer new" ? json(200, { id: "u1" }) : json(401, { error: { code: "unauthenticated", message: "expired" } });
    };
    const api = new Api(session, fetcher as typeof fetch);
    await expect(api.call("me", { auth: "required" })).resolves.toEqual({ id: "u1" });
    expect(seen).toEqual(["GET /api/v1/auth/me Bearer old", "POST /api/v1/auth/refresh ", "GET /api/v1/auth/me Bearer new"]);
    expect(session.refreshToken).toBe("r2");
  });

  it("signs out when the refresh token is refused", async () => {
    const session = new Session(new MemoryStore());
    session.store({ access_token: "a", refresh_token: "r", expires_in: 1, refresh_expires_in: 1 });
    const api = new Api(session, (async () => json(401, { error: { code: "x", message: "no" } })) as typeof fetch);
    await expect(api.call("me", { auth: "required" })).rejects.toBeInstanceOf(ApiError);
    expect(session.signedIn).toBe(false);
  });

  it("answers null for an optional endpoint this deployment lacks, and throws other errors", async () => {
    let status = 404;
    const api = new Api(new Session(new MemoryStore()), (async () => json(status, { error: { code: "not_found", message: "no such endpoint" } })) as typeof fetch);
    await expect(api.optional("plans")).resolves.toBeNull();
    status = 503;
    await expect(api.optional("plans")).rejects.toMatchObject({ status: 503, message: "no such endpoint" });
  });

  it("asks only for optional endpoints that /web/config lists", async () => {
    const asked: string[] = [];
    const api = new Api(new Session(new MemoryStore()), (async (url: RequestInfo | URL) => {
      asked.push(String(url));
      if (String(url) === "/api/v1/web/config") return json(200, { routes: ["GET /api/v1/recommendations/similar/{id}"] });
      return json(200, { items: [] });
    }) as typeof fetch);
    await expect(api.optional("plans")).resolves.toBeNull();
    await expect(api.optional("similar", { params: { track_id: "t1" } })).resolves.toEqual({ items: [] });
    expect(asked).toEqual(["/api/v1/web/config", "/api/v1/recommendations/similar/t1"]);
  });

  it("refuses a call that needs an account when signed out, without a request", async () => {
    let calls = 0;
    const api = new Api(new Session(new MemoryStore()), (async () => (calls++, json(200, {}))) as typeof fetch);
    await expect(api.call("vote", { auth: "required", body: {} })).rejects.toMatchObject({ status: 401 });
    expect(calls).toBe(0);
  });
});

describe("Session", () => {
  it("survives a reload and ignores a corrupt entry", () => {
    const store = new MemoryStore();
    new Session(store, () => 1000).store({ access_token: "a", refresh_token: "r", expires_in: 60, refresh_expires_in: 1 });
    const again = new Session(store, () => 1000 + 55_000);
    expect(again.accessToken).toBe("a");
    expect(again.stale).toBe(true);
    store.setItem("sonicforge.session", "{not json");
    expect(new Session(store).signedIn).toBe(false);
  });
});
