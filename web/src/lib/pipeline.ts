// The air-feed sensor as the console says it.

import { ago } from "./format";

export interface Sensor {
  name: string;
  status: string;
  available: boolean;
  last_tick: { status: string; at: string | null; skip_reason: string | null; run_ids: string[]; error: string | null } | null;
}

export function sensorText(s: Sensor): string {
  if (!s.available) return "The air-feed sensor runs in the Dagster daemon; its ticks are in the Dagster UI.";
  const t = s.last_tick;
  if (!t) return `Air-feed sensor ${s.status.toLowerCase()}; it has not decided anything yet.`;
  const when = t.at ? ` ${ago(t.at)}` : "";
  const what =
    t.status === "SUCCESS"
      ? `asked for ${t.run_ids.length} run${t.run_ids.length === 1 ? "" : "s"}`
      : t.status === "SKIPPED"
        ? `skipped: ${t.skip_reason ?? "no reason given"}`
        : `failed: ${t.error ?? t.status}`;
  return `Air-feed sensor ${s.status.toLowerCase()}; last decision${when}: ${what}.`;
}
