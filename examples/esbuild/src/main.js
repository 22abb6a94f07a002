// A stand-in for an Electron main process that a bundler packs into one file: it makes a
// channel, sends a request that carries a sender for the reply, answers it, and prints the
// answer. Any use of a channel loads the native addon, which is what a bundled main gets wrong
// when the addon is not where the library looks (see ../../docs/bundling.md).
import { channel } from 'electron-ipc-channel';

async function main() {
  const [requests, incoming] = channel();
  const [replyTo, replies] = channel();

  requests.send({ text: 'ping', replyTo });
  const request = await incoming.recv();
  request.replyTo.send(`${request.text} -> pong`);
  request.replyTo.close();

  console.log(await replies.recv());
  for (const end of [requests, incoming, replyTo, replies]) end.close();
}

main().catch((e) => {
  console.error(e.message);
  process.exitCode = 1;
});
