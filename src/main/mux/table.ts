/**
 * The channels a multiplexed connection tracks, by key (see mux.ts): an array indexed by the
 * key's low bits, with a Map for the keys whose slot is taken by another live channel.
 *
 * Keys are never reused and most channels live for one message (a reply channel), so the
 * channels alive at once hold different slots almost always: a lookup is one array read and a
 * key comparison. A `Map` keyed by the ever-growing ids (what this replaces) allocated and
 * rehashed its backing store as entries came and went (docs/multiplexing.md, "Fifth round").
 * A key the peer chose (negative) can be anything: keys that share a slot go to the overflow
 * Map, whose size, like the table's, is bounded by `maxChannels` (checked by the callers). The
 * wire and the ids are unchanged.
 */
import type { Chan } from './endpoints.js';

/** Initial slots (a power of two); the table doubles while it is over half full. */
const INITIAL_SLOTS = 1024;

export class ChanTable {
  private slots: Array<Chan | undefined> = new Array<Chan | undefined>(INITIAL_SLOTS).fill(undefined);
  private mask = INITIAL_SLOTS - 1;
  /** Channels whose slot holds another channel. */
  private overflow = new Map<number, Chan>();
  /** Channels tracked. */
  size = 0;

  /** The slot of `key`: this side's keys (positive) on even slots, the peer's on odd ones. */
  private slotOf(key: number): number {
    return (key > 0 ? key * 2 : -key * 2 + 1) & this.mask;
  }

  get(key: number): Chan | undefined {
    const c = this.slots[this.slotOf(key)];
    if (c !== undefined && c.key === key) return c;
    return this.overflow.size === 0 ? undefined : this.overflow.get(key);
  }

  has(key: number): boolean {
    return this.get(key) !== undefined;
  }

  /** Tracks `c` under its key, replacing a channel tracked under the same key. */
  add(c: Chan): void {
    const key = c.key;
    const i = this.slotOf(key);
    const there = this.slots[i];
    if (there === undefined) {
      // The same key waiting in the overflow (its slot was taken then) is replaced.
      if (this.overflow.size !== 0 && this.overflow.delete(key)) this.size--;
      this.slots[i] = c;
    } else if (there.key === key) {
      this.slots[i] = c;
      return;
    } else {
      const had = this.overflow.size;
      this.overflow.set(key, c);
      if (this.overflow.size === had) return;
    }
    this.size++;
    if (this.size > this.slots.length >>> 1) this.grow();
  }

  /** Stops tracking `c` (not another channel under its key). */
  delete(c: Chan): void {
    const i = this.slotOf(c.key);
    if (this.slots[i] === c) {
      this.slots[i] = undefined;
      this.size--;
      // A channel of the same slot waiting in the overflow is not moved in: lookups find it there.
      return;
    }
    if (this.overflow.get(c.key) === c) {
      this.overflow.delete(c.key);
      this.size--;
    }
  }

  /** Every channel tracked (a copy: callers change the table while they go through it). */
  values(): Chan[] {
    const out: Chan[] = [];
    for (const c of this.slots) if (c !== undefined) out.push(c);
    for (const c of this.overflow.values()) out.push(c);
    return out;
  }

  /** Twice the slots, every channel placed again (over half full: slots would be shared often). */
  private grow(): void {
    const all = this.values();
    const n = this.slots.length * 2;
    this.slots = new Array<Chan | undefined>(n).fill(undefined);
    this.mask = n - 1;
    this.overflow = new Map();
    this.size = 0;
    for (const c of all) this.add(c);
  }
}
