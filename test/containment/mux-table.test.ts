// Containment of IpcMux's channel table (src/main/mux/table.ts, docs/multiplexing.md "Fifth
// round"): a peer's frames under ids that share a table slot with live channels (this side's k
// and k + 512 with 1024 slots; the peer's -j and -(j + 512)) reach only the channel of their own
// id, and a forged id whose slot holds a granted channel is MALFORMED, not delivered there.
// The peer writes raw frames on plain channels in this process.
import { describe, expect, it } from 'vitest';
import { IpcMux, channel } from '../../src/main/index.js';
import type { IpcError, MuxFrame } from '../../src/main/index.js';

/** A mux ("victim") whose peer writes raw frames on plain channels. */
function rawPeer(): { v: IpcMux; errors: IpcError[]; send(f: unknown[]): void; next(): Promise<unknown[]> } {
  const [pTx, vRx] = channel<MuxFrame>();
  const [vTx, pRx] = channel<MuxFrame>();
  const errors: IpcError[] = [];
  const v = IpcMux.open(vTx, vRx, { onError: (e) => errors.push(e) });
  return {
    v,
    errors,
    send: (f) => pTx.send(f),
    next: async () => (await pRx.recv({ timeout: 5000 })) as unknown[],
  };
}

const tick = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('IpcMux channel ids sharing a table slot', () => {
  it('a frame for an id sharing the slot of a granted channel is forged: MALFORMED, not delivered there', async () => {
    const { v, errors, send, next } = rawPeer();
    const [s, r] = v.channel<unknown>();
    v.sender.send({ s });
    s.close();
    const f = await next();
    expect(f[2]).toBe('s');
    const id = f[3] as number; // the victim's id of the channel, as it writes it
    send([-(id + 512), 'forged']);
    send([-(id + 1024), 'forged too']);
    send([-id, 'ok']);
    expect(await r.recv({ timeout: 5000 })).toBe('ok');
    await tick();
    expect(r.tryRecv()).toBeUndefined();
    expect(errors.map((e) => e.code)).toEqual(['MALFORMED', 'MALFORMED']);
    v.close();
  });

  it('senders the peer gave under ids sharing a slot each reach their own channel, and each is dropped alone', async () => {
    const { v, errors, send, next } = rawPeer();
    const ids = [5, 5 + 512, 5 + 1024, 5 + 4096];
    for (const id of ids) send([-1, { tx: null, id }, 's', id, 'tx']);
    const got: Array<{ tx: { send(x: unknown): void; close(): void }; id: number }> = [];
    for (const _ of ids) got.push((await v.receiver.recv({ timeout: 5000 })) as (typeof got)[number]);
    expect(v.stats.channels).toBe(2 + ids.length);
    for (const g of got) g.tx.send(`to ${g.id}`);
    for (const id of ids) expect(await next()).toEqual([-id, `to ${id}`]); // its key for the peer's id
    got[1]!.tx.close();
    expect(await next()).toEqual([0, 1, -ids[1]!, 1]);
    for (const g of [got[0]!, got[2]!, got[3]!]) g.tx.send(`again ${g.id}`);
    for (const id of [ids[0]!, ids[2]!, ids[3]!]) expect(await next()).toEqual([-id, `again ${id}`]);
    // The dropped one's id is free: the peer gives it again (as an honest peer never would, but
    // the victim must take it as a new grant, not as the old channel).
    send([-1, { tx: null, id: ids[1] }, 's', ids[1], 'tx']);
    const again = (await v.receiver.recv({ timeout: 5000 })) as (typeof got)[number];
    again.tx.send('new');
    expect(await next()).toEqual([-ids[1]!, 'new']);
    for (const g of [...got, again]) g.tx.close();
    const drops = await next();
    expect(drops[0]).toBe(0);
    expect(new Set(drops.filter((_, i) => i % 3 === 2))).toEqual(new Set(ids.map((id) => -id)));
    expect(v.stats.channels).toBe(2);
    expect(errors).toEqual([]);
    v.close();
  });
});
