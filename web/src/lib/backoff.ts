// Retry delays that grow, with jitter, and reset after a success.

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs = 1000,
    private readonly maxMs = 60_000,
    private readonly random: () => number = Math.random,
  ) {}

  /** The next delay: base * 2^attempt, capped, with ±20 % jitter. */
  next(): number {
    const raw = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt += 1;
    const jitter = 0.8 + 0.4 * this.random();
    return Math.round(Math.min(this.maxMs, raw * jitter));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
