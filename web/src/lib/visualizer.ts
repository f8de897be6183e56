// The spectrum canvas: each display frame draws the feed's frame for the
// audio the listener hears now (the player's audible wall time), so the
// bars move with the music and not with the streamer's clock.

import { FrameBuffer, smooth } from "./frames";

export interface AudibleClock {
  audibleTime(now?: number): number | null;
}

export class Visualizer {
  private raf = 0;
  private levels: Float32Array<ArrayBufferLike> = new Float32Array(32);
  private lastDraw = 0;
  private readonly ctx: CanvasRenderingContext2D | null;
  private hue = 200;
  private heights: number[] = [];
  /** Display frames that would have drawn the same picture again. */
  skipped = 0;
  private palette: string[] = [];
  /** Frames drawn, and how many of them had a feed frame for the moment heard. */
  drawn = 0;
  matched = 0;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly buffer: FrameBuffer,
    private readonly clock: AudibleClock,
  ) {
    this.ctx = canvas.getContext("2d", { alpha: false, desynchronized: true });
  }

  setHue(hue: number): void {
    this.hue = hue;
    this.palette = [];
  }

  /** Colours per bar and level step, made once per hue (not 2,000 strings a second). */
  private colour(bar: number, level: number): string {
    const step = Math.min(15, Math.floor(level * 16));
    const key = bar * 16 + step;
    return (this.palette[key] ??= `hsl(${(this.hue + bar * 4) % 360} 80% ${35 + step * 2.2}%)`);
  }

  start(): void {
    if (this.raf) return;
    this.resize();
    const loop = (t: number): void => {
      this.raf = requestAnimationFrame(loop);
      this.frame(t);
    };
    this.raf = requestAnimationFrame(loop);
  }

  stop(): void {
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = 0;
  }

  get running(): boolean {
    return this.raf !== 0;
  }

  resize(): void {
    // 32 bars need no more than ~640 pixels across: a smaller backing store
    // keeps each frame's raster and upload cheap (the CSS size is unchanged).
    const css = Math.max(1, this.canvas.clientWidth);
    const ratio = Math.min(2, window.devicePixelRatio || 1, MAX_BACKING_W / css);
    const w = Math.max(1, Math.round(css * ratio));
    const h = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
  }

  private frame(t: number): void {
    const dt = this.lastDraw ? Math.min(0.1, (t - this.lastDraw) / 1000) : 1 / 60;
    this.lastDraw = t;
    const heard = this.clock.audibleTime();
    const frame = heard === null ? null : this.buffer.at(heard);
    this.drawn += 1;
    if (frame) this.matched += 1;
    this.levels = smooth(this.levels, frame ? frame.b : ZEROS, dt);
    // A display frame whose bars would not move by a pixel is not drawn:
    // same picture, no raster, no upload (most of a canvas's cost).
    const h = this.canvas.height - 4;
    let same = this.heights.length === this.levels.length;
    for (let i = 0; i < this.levels.length; i++) {
      const px = Math.max(2, Math.round((this.levels[i] ?? 0) * h));
      if (this.heights[i] !== px) same = false;
      this.heights[i] = px;
    }
    if (same) {
      this.skipped += 1;
      return;
    }
    this.draw();
  }

  private draw(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    const { width: w, height: h } = this.canvas;
    ctx.fillStyle = "#0b1020";
    ctx.fillRect(0, 0, w, h);
    const n = this.levels.length;
    const gap = Math.max(1, Math.round(w / n / 6));
    const bar = (w - gap * (n + 1)) / n;
    for (let i = 0; i < n; i++) {
      const v = this.levels[i] ?? 0;
      const bh = this.heights[i] ?? 2;
      ctx.fillStyle = this.colour(i, v);
      ctx.fillRect(gap + i * (bar + gap), h - bh, bar, bh);
    }
  }
}

const ZEROS: number[] = new Array(32).fill(0);
const MAX_BACKING_W = 320;
