// hasher.mjs: a helper process that serves the Hasher protocol to its parent.
import { createHash } from 'node:crypto';
import { connectToParent, serve } from 'electron-ipc-channel';
import { Hasher } from './protocol.mjs';

const server = serve(Hasher, connectToParent(), {
  hash: async ({ text, rounds }, { progress, signal }) => {
    // Reaches the caller as an RpcError with this code and message (never this stack).
    if (!Number.isInteger(rounds) || rounds < 4) throw Object.assign(new Error('rounds must be an integer >= 4'), { code: 'BAD_ROUNDS' });
    let digest = text;
    for (let i = 1; i <= rounds; i++) {
      signal.throwIfAborted(); // cancellation from the caller reaches here
      digest = createHash('sha256').update(digest).digest('hex');
      if (i % (rounds / 4) === 0) {
        progress((100 * i) / rounds);
        await new Promise((r) => setImmediate(r));
      }
    }
    return digest;
  },
  whoami: () => process.pid,
});
await server.done; // the parent closed the link
