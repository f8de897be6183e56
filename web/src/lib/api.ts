// The one typed client of the SonicForge API. Every route the pages call is
// named in ROUTES (or OPTIONAL_ROUTES, for endpoints other work adds and a
// deployment may not have yet); tests/web/test_client_routes.py checks
// ROUTES against the API's OpenAPI document, so a renamed route fails CI.

import { Session } from "./session";

export const ROUTES = {
  status: "GET /api/v1/stream/status",
  events: "GET /stream/events",
  history: "GET /api/v1/stream/history",
  queue: "GET /api/v1/stream/queue",
  enqueue: "POST /api/v1/stream/queue",
  dequeue: "DELETE /api/v1/stream/queue/{entry_id}",
  reorder: "PUT /api/v1/stream/queue/order",
  control: "POST /api/v1/stream/control",
  tracks: "GET /api/v1/tracks",
  track: "GET /api/v1/tracks/{track_id}",
  topTracks: "GET /api/v1/top-tracks",
  vote: "POST /api/v1/vote",
  votes: "GET /api/v1/vote/{track_id}",
  share: "POST /api/v1/share",
  openShare: "GET /api/v1/share/{code}",
  register: "POST /api/v1/auth/register",
  login: "POST /api/v1/auth/login",
  refresh: "POST /api/v1/auth/refresh",
  logout: "POST /api/v1/auth/logout",
  me: "GET /api/v1/auth/me",
  runPipeline: "POST /api/v1/pipeline/run",
  pipelineRun: "GET /api/v1/pipeline/runs/{run_id}",
  benchmarks: "GET /api/v1/pipeline/benchmark",
  pipelineRuns: "GET /api/v1/pipeline/runs",
  sensor: "GET /api/v1/pipeline/sensor",
  config: "GET /api/v1/web/config",
  ready: "GET /ready",
} as const;

// Used when present; a 404 (or 405) means "not in this deployment yet".
export const OPTIONAL_ROUTES = {
  dashboard: "GET /api/v1/analytics/dashboard",
  publicStats: "GET /api/v1/analytics/public/stats",
  experiments: "GET /api/v1/analytics/experiments",
  experimentVariant: "GET /api/v1/analytics/experiments/{experiment_id}/variant",
  trackEvent: "POST /api/v1/analytics/track",
  plans: "GET /api/v1/plans",
  subscription: "GET /api/v1/subscription",
  canGenerate: "GET /api/v1/can-generate",
  createRequest: "POST /api/v1/requests",
  request: "GET /api/v1/requests/{request_id}",
  personalized: "GET /api/v1/recommendations/personalized",
  similar: "GET /api/v1/recommendations/similar/{track_id}",
  trending: "GET /api/v1/recommendations/trending",
  myRequests: "GET /api/v1/requests",
  requestEvents: "GET /api/v1/requests/{request_id}/events",
} as const;

export type RouteName = keyof typeof ROUTES | keyof typeof OPTIONAL_ROUTES;

export interface NowPlaying {
  track_id: string;
  title: string;
  artist: string;
  genre: string;
  started_at: string;
  position_s: number;
  duration_s: number;
  source: string;
}

export interface OutputStatus {
  name: string;
  state: string;
  detail: string;
  restarts: number;
  listeners: number;
  updated_at: string;
}

export interface StreamStatus {
  state: "on_air" | "stalled" | "offline";
  now_playing: NowPlaying | null;
  listeners: number;
  uptime_s: number | null;
  heartbeat_age_s: number | null;
  outputs: OutputStatus[];
  queue_length: number;
}

export interface QueueEntry {
  entry_id: string;
  track_id: string;
  source: string;
  requested_by: string | null;
  added_at: string;
}

export interface Queue {
  items: QueueEntry[];
  total: number;
}

export interface Track {
  track_id: string;
  genre: string;
  bpm: number;
  musical_key: string;
  duration_s: number;
  prompt: string;
  backend: string;
  model_name: string;
  model_version: string;
  created_at: string;
  score: { quality_score: number; passed: boolean; integrated_lufs: number } | null;
  plays: number;
  on_air: boolean;
  audio_url: string | null;
}

export interface VoteAggregate {
  track_id: string;
  votes: number;
  stars_count: number;
  stars_avg: number | null;
  ups: number;
  downs: number;
  score: number | null;
  mine?: { stars: number | null; direction: "up" | "down" | null } | null;
}

export interface TrackDetail extends Track {
  votes: VoteAggregate;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface Played {
  play_id: string | null;
  track_id: string;
  title: string | null;
  genre: string | null;
  bpm: number | null;
  musical_key: string | null;
  started_at: string;
  skipped: boolean | null;
}

export interface Share {
  code: string;
  track_id: string;
  landing_url: string;
  created_at: string;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  refresh_expires_in: number;
}

export interface Me {
  id: string;
  email: string;
  display_name: string;
  role: string;
  permissions: string[];
}

export interface PipelineRun {
  run_id: string;
  batch_id: string | null;
  status: string;
  mode: string;
  job_name: string;
  started_at: string | null;
  ended_at: string | null;
}

export interface WebConfig {
  dagster_url: string;
  mlflow_url: string;
  docs_url: string;
  web_base_url: string;
  routes: string[];
}

/** "GET /a/{x}/b" and "GET /a/{track_id}/b" name one operation. */
export function routeKey(spec: string): string {
  return spec.replace(/\{[^}]*\}/g, "{}");
}

export interface Recommendation {
  track_id: string;
  genre?: string;
  bpm?: number;
  musical_key?: string;
  score?: number;
  reason?: string | { kind: string; text: string; track_id?: string | null };
}

export interface RecommendationList {
  items: Recommendation[];
  strategy: string;
  model_version: string | null;
}

/** What a recommendation says about why it was chosen. */
export function reasonText(r: Recommendation): string {
  if (!r.reason) return "";
  return typeof r.reason === "string" ? r.reason : r.reason.text;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

type Params = Record<string, string | number | boolean | undefined>;

/** "/api/v1/tracks/{track_id}" with {track_id: "t1"} and the rest as a query. */
export function buildPath(template: string, params: Params = {}): string {
  const rest: Params = { ...params };
  const path = template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const value = rest[key];
    delete rest[key];
    if (value === undefined) throw new Error(`missing path parameter ${key}`);
    return encodeURIComponent(String(value));
  });
  const query = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join("&");
  return query ? `${path}?${query}` : path;
}

export function route(name: RouteName): { method: string; path: string } {
  const spec = (ROUTES as Record<string, string>)[name] ?? (OPTIONAL_ROUTES as Record<string, string>)[name];
  if (!spec) throw new Error(`unknown route ${name}`);
  const [method, path] = spec.split(" ") as [string, string];
  return { method, path };
}

export interface CallOptions {
  params?: Params;
  body?: unknown;
  /** "optional": send the token when signed in; "required": fail without one. */
  auth?: "none" | "optional" | "required";
  signal?: AbortSignal;
}

export class Api {
  constructor(
    readonly session: Session,
    private readonly fetcher: typeof fetch = (...args) => fetch(...args),
  ) {}

  async call<T>(name: RouteName, options: CallOptions = {}): Promise<T> {
    const { method, path } = route(name);
    const url = buildPath(path, options.params);
    const auth = options.auth ?? "optional";
    if (auth === "required" && !this.session.signedIn) {
      throw new ApiError(401, "unauthenticated", "sign in first");
    }
    let response = await this.send(method, url, options, auth !== "none");
    if (response.status === 401 && auth !== "none" && this.session.signedIn) {
      if (await this.refresh()) response = await this.send(method, url, options, true);
    }
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    const data: unknown = text ? safeJson(text) : null;
    if (!response.ok) {
      const error = (data as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(response.status, error?.code ?? "error", error?.message ?? response.statusText);
    }
    return data as T;
  }

  private configured: Promise<Set<string> | null> | null = null;
  private configuration: Promise<WebConfig | null> | null = null;

  /** This deployment's configuration (asked once for the page's life). */
  config(): Promise<WebConfig | null> {
    this.configuration ??= this.call<WebConfig>("config", { auth: "none" }).catch(() => null);
    return this.configuration;
  }

  /** Whether this deployment serves ``name``; null when it cannot tell. */
  async has(name: RouteName): Promise<boolean | null> {
    this.configured ??= this.config().then((c) => (c ? new Set(c.routes.map(routeKey)) : null));
    const routes = await this.configured;
    if (!routes) return null;
    const { method, path } = route(name);
    return routes.has(routeKey(`${method} ${path}`));
  }

  /**
   * The endpoint's answer, or null when this deployment does not have it: the
   * page asks only for what /web/config lists, so a missing feature costs no
   * request (and no 404 in the console); a 404 or 405 still means "absent".
   */
  async optional<T>(name: keyof typeof OPTIONAL_ROUTES | RouteName, options: CallOptions = {}): Promise<T | null> {
    if ((await this.has(name)) === false) return null;
    try {
      return await this.call<T>(name, options);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
      throw err;
    }
  }

  private send(method: string, url: string, options: CallOptions, withToken: boolean): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const token = this.session.accessToken;
    if (withToken && token) headers.Authorization = `Bearer ${token}`;
    const init: RequestInit = { method, headers, credentials: "same-origin" };
    if (options.body !== undefined) init.body = JSON.stringify(options.body);
    if (options.signal) init.signal = options.signal;
    return this.fetcher(url, init);
  }

  private refreshing: Promise<boolean> | null = null;

  /** One refresh at a time, however many calls met the 401. */
  refresh(): Promise<boolean> {
    const token = this.session.refreshToken;
    if (!token) return Promise.resolve(false);
    this.refreshing ??= (async () => {
      try {
        const r = await this.send("POST", route("refresh").path, { body: { refresh_token: token } }, false);
        if (!r.ok) {
          this.session.clear();
          return false;
        }
        this.session.store((await r.json()) as TokenPair);
        return true;
      } catch {
        return false;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  async login(email: string, password: string): Promise<Me> {
    const pair = await this.call<TokenPair>("login", { body: { email, password }, auth: "none" });
    this.session.store(pair);
    return this.me();
  }

  async register(email: string, displayName: string, password: string): Promise<Me> {
    await this.call("register", { body: { email, display_name: displayName, password }, auth: "none" });
    return this.login(email, password);
  }

  async logout(): Promise<void> {
    try {
      if (this.session.signedIn) await this.call("logout", { auth: "required" });
    } finally {
      this.session.clear();
    }
  }

  me(): Promise<Me> {
    return this.call<Me>("me", { auth: "required" });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
