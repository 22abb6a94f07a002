// main.mjs: a pool of two supervised hasher helpers, typed calls with progress and cancellation,
// and a crashed helper replaced. Run: npm run build:ts && node examples/rpc/main.mjs
import { helperPool, isRpcError, rpcClient } from 'electron-ipc-channel';
import { Hasher } from './protocol.mjs';

const clients = new WeakMap();
const exits = [];
const pool = await helperPool(new URL('./hasher.mjs', import.meta.url), {
  size: 2,
  restart: { maxRestarts: 3, backoff: { initialMs: 50 } },
  onStart: (helper) => void clients.set(helper, rpcClient(Hasher, helper)),
  onExit: (e) => exits.push(`${e.cause}${e.signal ? ` ${e.signal}` : ''}, restart: ${e.restart}`),
});
const call = (method, input, options) => pool.use((helper, signal) => clients.get(helper).call(method, input, { ...options, signal }));

// 1. Calls spread over both helpers.
const pids = new Set(await Promise.all([call('whoami'), call('whoami'), call('whoami'), call('whoami')]));
console.log(`pool members answering: ${pids.size}`);

// 2. Progress reaches the caller.
const seen = [];
const digest = await call('hash', { text: 'hello', rounds: 4000 }, { onProgress: (pct) => seen.push(pct) });
console.log(`digest ${digest.slice(0, 16)}..., progress ${seen.join(', ')}`);

// 3. Cancellation reaches the helper's handler.
try {
  await call('hash', { text: 'x', rounds: 2_000_000 }, { timeout: 50 });
} catch (e) {
  console.log(`cancelled: ${e.code}`);
}

// 4. A helper killed: the pool replaces it and calls go on.
const victim = pool.helpers[0];
process.kill(victim.pid, 'SIGKILL'); // a crash, as far as the pool can tell
await new Promise((r) => setTimeout(r, 300));
console.log(`after the crash: ${await call('whoami') > 0 ? 'answering' : 'silent'}; exits: ${exits.join('; ')}`);

// 5. Errors from the other side carry a code, not the helper's stack.
try {
  await call('hash', { text: 'x', rounds: 0.5 });
} catch (e) {
  console.log(`remote error: ${isRpcError(e) ? `${e.code} (${e.message})` : e}`);
}

await pool.close();
console.log('rpc example finished: OK');
