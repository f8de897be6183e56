// A short time series for the console's sparklines, and a flattener that
// turns a dashboard body of any shape into labelled numbers.

export class Series {
  private points: [number, number][] = [];

  constructor(private readonly capacity = 90) {}

  push(t: number, value: number): void {
    this.points.push([t, value]);
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity);
  }

  get length(): number {
    return this.points.length;
  }

  get last(): number | undefined {
    return this.points[this.points.length - 1]?.[1];
  }

  get max(): number {
    return this.points.reduce((m, [, v]) => Math.max(m, v), 0);
  }

  /** Points in a ``width`` × ``height`` box (y grows downwards, 0 at the bottom). */
  scaled(width: number, height: number): [number, number][] {
    const n = this.points.length;
    if (!n) return [];
    const t0 = this.points[0]?.[0] ?? 0;
    const span = Math.max(1, (this.points[n - 1]?.[0] ?? t0) - t0);
    const top = Math.max(1, this.max);
    return this.points.map(([t, v]) => [n === 1 ? width : ((t - t0) / span) * width, height - (v / top) * height]);
  }
}

/** {"listeners": {"now": 3}, "kpis": [{"plays": 5}]} → {"listeners.now": 3, "kpis.0.plays": 5}. */
export function flattenNumbers(value: unknown, prefix = "", out: Record<string, number> = {}, depth = 0): Record<string, number> {
  if (depth > 4) return out;
  if (typeof value === "number" && Number.isFinite(value)) {
    out[prefix || "value"] = value;
  } else if (Array.isArray(value)) {
    value.slice(0, 5).forEach((v, i) => flattenNumbers(v, prefix ? `${prefix}.${i}` : String(i), out, depth + 1));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) flattenNumbers(v, prefix ? `${prefix}.${k}` : k, out, depth + 1);
  }
  return out;
}
