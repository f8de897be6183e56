// The operator's KPIs from /api/v1/analytics/dashboard (issue 10's shape),
// with a generic fallback for any other body.

import { duration, percent } from "./format";
import { flattenNumbers } from "./series";

export interface KpiDay {
  day: string;
  plays: number;
  votes: number;
  shares: number;
  requests: number;
  listening_hours: number;
  peak_concurrent_listeners: number;
  dau: number;
  generation_count: number;
  generation_pass_rate: number | null;
}

export interface Dashboard {
  listeners_now: number;
  today: KpiDay | null;
  trailing: KpiDay[];
  generation: { tracks: number; passed: number; pass_rate: number | null; rotation_size: number };
  outbox: { pending: number; lag_s: number | null };
  experiments: { experiment_id: string; status: string; variants: Record<string, unknown>[] }[];
}

function isDashboard(body: unknown): body is Dashboard {
  const b = body as Partial<Dashboard> | null;
  return !!b && typeof b.listeners_now === "number" && typeof b.generation === "object" && typeof b.outbox === "object";
}

export function dashboardKpis(body: unknown): [string, string][] {
  if (!isDashboard(body)) {
    return Object.entries(flattenNumbers(body))
      .slice(0, 12)
      .map(([k, v]) => [k.replace(/[._]/g, " "), Number.isInteger(v) ? String(v) : v.toFixed(3)]);
  }
  const t = body.today;
  return [
    ["Plays today", String(t?.plays ?? 0)],
    ["Votes today", String(t?.votes ?? 0)],
    ["Shares today", String(t?.shares ?? 0)],
    ["Requests today", String(t?.requests ?? 0)],
    ["Listening hours", (t?.listening_hours ?? 0).toFixed(1)],
    ["Peak listeners", String(t?.peak_concurrent_listeners ?? 0)],
    ["Pass rate", percent(body.generation.pass_rate)],
    ["In rotation", String(body.generation.rotation_size)],
    ["Outbox lag", body.outbox.lag_s === null ? "none" : duration(body.outbox.lag_s)],
    ["Outbox pending", String(body.outbox.pending)],
  ];
}

/** Plays per day, oldest first (for the console's bars). */
export function playsByDay(body: unknown): [string, number][] {
  if (!isDashboard(body)) return [];
  return body.trailing
    .slice()
    .reverse()
    .map((d) => [d.day, d.plays]);
}
