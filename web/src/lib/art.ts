// Cover art made from a track's own features, so every track has a face
// from the moment it is mastered: the genre sets the hue family, the key's
// mode the lightness (minor darker), the tempo the number of rings and
// their spacing, and the track id the fine detail (a seeded generator).

export interface ArtInput {
  track_id: string;
  genre?: string | null;
  bpm?: number | null;
  musical_key?: string | null;
}

export interface Ring {
  radius: number; // 0..1 of the half-size
  width: number;
  hue: number;
  lightness: number;
  start: number; // radians
  sweep: number; // radians
}

export interface ArtSpec {
  background: [string, string];
  rings: Ring[];
  dots: { x: number; y: number; r: number; hue: number }[];
}

const GENRE_HUES: Record<string, number> = {
  house: 28, techno: 200, ambient: 170, drum_and_bass: 300, lofi: 38, lo_fi: 38, jazz: 48,
  synthwave: 290, trance: 220, dubstep: 120, hip_hop: 12, classical: 60, rock: 0, pop: 330,
  disco: 320, downtempo: 150, breakbeat: 90, chillout: 185, cinematic: 240, funk: 20,
};

/** A 32-bit FNV-1a hash: stable across browsers. */
export function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: a small seeded generator of floats in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function genreHue(genre: string | null | undefined): number {
  if (!genre) return 210;
  const known = GENRE_HUES[genre.toLowerCase()];
  return known ?? hash(genre.toLowerCase()) % 360;
}

export function artFor(track: ArtInput): ArtSpec {
  const rand = seeded(hash(track.track_id));
  const hue = genreHue(track.genre);
  const minor = /minor|m$/i.test(track.musical_key ?? "");
  const base = minor ? 22 : 38;
  const bpm = Math.min(200, Math.max(50, track.bpm ?? 110));
  const count = 3 + Math.round((bpm - 50) / 25); // 3 rings at 50 BPM, 9 at 200
  const rings: Ring[] = [];
  for (let i = 0; i < count; i++) {
    rings.push({
      radius: 0.18 + (0.78 * (i + 1)) / (count + 1),
      width: 0.02 + 0.05 * rand(),
      hue: (hue + (i % 2 ? 24 : -12) + rand() * 20) % 360,
      lightness: base + 20 + rand() * 25,
      start: rand() * Math.PI * 2,
      sweep: Math.PI * (0.6 + 1.3 * rand()),
    });
  }
  const dots = Array.from({ length: 5 + Math.floor(rand() * 6) }, () => ({
    x: rand(),
    y: rand(),
    r: 0.01 + rand() * 0.03,
    hue: (hue + 180 + rand() * 40) % 360,
  }));
  return {
    background: [`hsl(${hue} 45% ${base}%)`, `hsl(${(hue + 40) % 360} 55% ${Math.max(8, base - 14)}%)`],
    rings,
    dots,
  };
}

export function drawArt(canvas: HTMLCanvasElement, track: ArtInput): void {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const spec = artFor(track);
  const size = Math.min(canvas.width, canvas.height);
  const half = size / 2;
  const grad = ctx.createLinearGradient(0, 0, size, size);
  grad.addColorStop(0, spec.background[0]);
  grad.addColorStop(1, spec.background[1]);
  ctx.fillStyle = grad;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.lineCap = "round";
  for (const ring of spec.rings) {
    ctx.strokeStyle = `hsl(${ring.hue} 70% ${ring.lightness}%)`;
    ctx.lineWidth = ring.width * half;
    ctx.beginPath();
    ctx.arc(half, half, ring.radius * half, ring.start, ring.start + ring.sweep);
    ctx.stroke();
  }
  for (const dot of spec.dots) {
    ctx.fillStyle = `hsl(${dot.hue} 80% 70%)`;
    ctx.beginPath();
    ctx.arc(dot.x * size, dot.y * size, dot.r * size, 0, Math.PI * 2);
    ctx.fill();
  }
}
