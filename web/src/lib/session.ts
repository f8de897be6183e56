// The signed-in session: the token pair, kept in localStorage so that a
// reload or another tab stays signed in. The strict CSP (no inline or
// foreign scripts) is what keeps other code from reading it.

import type { TokenPair } from "./api";

const KEY = "sonicforge.session";

interface Stored {
  access_token: string;
  refresh_token: string;
  access_expires_at: number;
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class Session {
  private data: Stored | null;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly store_: KeyValueStore | null = typeof localStorage === "undefined" ? null : localStorage,
    private readonly now: () => number = Date.now,
  ) {
    this.data = read(store_);
  }

  get signedIn(): boolean {
    return this.data !== null;
  }

  get accessToken(): string | null {
    return this.data?.access_token ?? null;
  }

  get refreshToken(): string | null {
    return this.data?.refresh_token ?? null;
  }

  /** True when the access token is past (or within 10 s of) its expiry. */
  get stale(): boolean {
    return this.data !== null && this.now() > this.data.access_expires_at - 10_000;
  }

  store(pair: TokenPair): void {
    this.data = {
      access_token: pair.access_token,
      refresh_token: pair.refresh_token,
      access_expires_at: this.now() + pair.expires_in * 1000,
    };
    this.store_?.setItem(KEY, JSON.stringify(this.data));
    this.emit();
  }

  clear(): void {
    this.data = null;
    this.store_?.removeItem(KEY);
    this.emit();
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const fn of this.listeners) fn();
  }
}

function read(store: KeyValueStore | null): Stored | null {
  const raw = store?.getItem(KEY);
  if (!raw) return null;
  try {
    const data = JSON.parse(raw) as Partial<Stored>;
    if (typeof data.access_token === "string" && typeof data.refresh_token === "string") {
      return {
        access_token: data.access_token,
        refresh_token: data.refresh_token,
        access_expires_at: Number(data.access_expires_at) || 0,
      };
    }
  } catch {
    /* a corrupt entry is a signed-out session */
  }
  return null;
}
