// Track requests (when this deployment has the payments endpoints): a
// signed-in listener asks for a track; the form says what their plan
// allows (/can-generate), and each request's way to air is pushed
// (/requests/{id}/events), with polling as the fallback.

import { Api, ApiError, buildPath, route, type Me } from "./lib/api";
import { Backoff } from "./lib/backoff";
import { $, announce, h, show, text } from "./lib/dom";
import { readEvents } from "./lib/sse";

export interface TrackRequest {
  request_id: string;
  status: string;
  reason?: string | null;
  prompt: string;
  genre: string;
  duration_s: number;
  plan?: string;
  expected_air_at?: string | null;
  aired_at?: string | null;
  track_id?: string | null;
}

interface CanGenerate {
  allowed: boolean;
  reason: string;
  plan: string;
  quota_left: number;
  credit_balance: number;
  resets_at: string | null;
}

interface Plans {
  plans: { id: string; name: string; max_request_duration_s: number }[];
}

export const STEPS = ["queued", "generating", "scoring", "mastering", "queued_on_air", "aired"] as const;
const TERMINAL = new Set(["aired", "failed"]);

/** How far along a request is, 0..1 (failed and unknown are 0). */
export function requestProgress(status: string | undefined): number {
  const i = STEPS.indexOf((status ?? "") as (typeof STEPS)[number]);
  return i < 0 ? 0 : (i + 1) / STEPS.length;
}

export function statusText(r: Pick<TrackRequest, "status" | "reason" | "expected_air_at">, locale?: string): string {
  switch (r.status) {
    case "failed":
      return `Failed${r.reason ? `: ${r.reason}` : ""}`;
    case "queued_on_air":
      return r.expected_air_at
        ? `On air at about ${new Date(r.expected_air_at).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" })}`
        : "Queued to play next";
    case "aired":
      return "Played on air";
    default:
      return r.status ? r.status.replace(/_/g, " ") : "Sent";
  }
}

export function mountRequests(api: Api, requireAccount: () => Promise<boolean>): { refresh(me: Me | null): void } {
  const section = $("#requests");
  const form = $<HTMLFormElement>("#request-form");
  const gate = $("#can-generate");
  const list = $("#my-requests");
  const followed = new Map<string, AbortController>();

  const refresh = async (me: Me | null): Promise<void> => {
    const plans = await api.optional<Plans>("plans").catch(() => null);
    show(section, plans !== null);
    if (plans === null) return;
    if (!me) {
      text(gate, "Sign in to request a track of your own.");
      list.replaceChildren();
      return;
    }
    try {
      const can = await api.optional<CanGenerate>("canGenerate", { auth: "required" });
      if (can) text(gate, can.allowed ? `You can request a track: ${can.reason}.` : `Not now: ${can.reason}.`);
      const plan = plans.plans.find((p) => p.id === can?.plan);
      if (plan) $<HTMLInputElement>("#req-duration").max = String(plan.max_request_duration_s);
      const mine = await api.optional<TrackRequest[]>("myRequests", { auth: "required", params: { limit: 5 } });
      list.replaceChildren();
      for (const r of (mine ?? []).slice().reverse()) follow(r);
    } catch {
      text(gate, "");
    }
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void (async () => {
      if (!(await requireAccount())) return;
      const data = new FormData(form);
      const body = {
        prompt: String(data.get("prompt") ?? "").trim(),
        genre: String(data.get("genre") ?? "").trim() || "house",
        duration_s: Number(data.get("duration_s") ?? 60),
      };
      const error = $("#request-error");
      text(error, "");
      try {
        const created = await api.call<TrackRequest>("createRequest", { body, auth: "required" });
        form.reset();
        announce("Request sent");
        follow(created);
      } catch (err) {
        text(error, err instanceof ApiError ? err.message : "The request could not be sent.");
      }
    })();
  });

  const follow = (initial: TrackRequest): void => {
    followed.get(initial.request_id)?.abort();
    const bar = h("progress", { max: 1, value: requestProgress(initial.status), "aria-label": `Progress of “${initial.prompt}” to air` });
    const label = h("span", { class: "muted small" }, statusText(initial));
    const row = h("li", { "data-request-id": initial.request_id }, h("span", { class: "grow" }, initial.prompt), bar, label);
    list.querySelector(`[data-request-id="${CSS.escape(initial.request_id)}"]`)?.remove();
    list.prepend(row);
    const update = (r: TrackRequest): void => {
      bar.value = requestProgress(r.status);
      text(label, statusText(r));
      if (r.status === "queued_on_air" || r.status === "aired") announce(`Your request: ${statusText(r)}`);
    };
    if (TERMINAL.has(initial.status)) return;
    const abort = new AbortController();
    followed.set(initial.request_id, abort);
    const token = api.session.accessToken;
    const url = buildPath(route("requestEvents").path, { request_id: initial.request_id });
    readEvents(url, token ? { Authorization: `Bearer ${token}` } : {}, (e) => {
      if (e.event === "status") update(JSON.parse(e.data) as TrackRequest);
    }, abort.signal).catch(() => poll(initial.request_id, update, abort.signal));
  };

  const poll = (id: string, update: (r: TrackRequest) => void, signal: AbortSignal): void => {
    const backoff = new Backoff(3000, 30_000);
    const tick = async (): Promise<void> => {
      if (signal.aborted) return;
      try {
        const r = await api.call<TrackRequest>("request", { params: { request_id: id }, auth: "required" });
        update(r);
        if (TERMINAL.has(r.status)) return;
      } catch {
        /* later */
      }
      setTimeout(() => void tick(), backoff.next());
    };
    void tick();
  };

  return { refresh: (me) => void refresh(me) };
}
