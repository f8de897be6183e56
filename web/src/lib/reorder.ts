// Queue reordering: what a drag (or a keyboard move) does to the list, and
// what the API needs to hear (PUT /stream/queue/order takes the ids to put
// at the front, in order; the rest keep theirs).

/** ``items`` with the one at ``from`` moved to index ``to``. */
export function move<T>(items: readonly T[], from: number, to: number): T[] {
  if (from < 0 || from >= items.length) return [...items];
  const out = [...items];
  const [item] = out.splice(from, 1);
  const target = Math.max(0, Math.min(out.length, to));
  out.splice(target, 0, item as T);
  return out;
}

/** The shortest prefix of ``after`` that, moved to the front, turns ``before`` into ``after``. */
export function orderRequest(before: readonly string[], after: readonly string[]): string[] {
  let same = 0;
  // The suffix that is already in place needs no mention.
  while (
    same < after.length &&
    before[before.length - 1 - same] === after[after.length - 1 - same]
  ) {
    same += 1;
  }
  const prefix = after.slice(0, after.length - same);
  return prefix.length ? prefix : [];
}

/** Where a drop at vertical position ``y`` lands among rows (their midpoints). */
export function dropIndex(midpoints: readonly number[], y: number): number {
  let i = 0;
  while (i < midpoints.length && y > (midpoints[i] as number)) i += 1;
  return i;
}
