// child.mjs
import { IpcSender, channel } from 'electron-ipc-channel';

const toParent = IpcSender.connect(process.env.IPC_NAME);
const [reply, requests] = channel();
toParent.send({ reply }); // a sender travels inside a message
reply.close(); // the parent has its own copy; keeping this one would never end the loop
for await (const { n } of requests) toParent.send({ result: n * n });
