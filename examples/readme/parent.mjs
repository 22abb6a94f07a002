// parent.mjs
import { fork } from 'node:child_process';
import { IpcOneShotServer } from 'electron-ipc-channel';

const server = new IpcOneShotServer();
const child = fork(new URL('./child.mjs', import.meta.url), { env: { ...process.env, IPC_NAME: server.name } });
const [fromChild, { reply }] = await server.accept({ timeout: 5000, peer: { pid: child.pid } });

reply.send({ op: 'square', n: 12n });
console.log(await fromChild.recv()); // { result: 144n }
reply.close(); // the child's loop ends (DISCONNECTED) and it exits
fromChild.close();
