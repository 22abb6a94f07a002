// protocol.mjs: the one definition main and the helpers import (method<>() types without
// validating; use Standard Schemas such as zod for input from a peer you do not trust).
import { defineProtocol, event, method } from 'electron-ipc-channel/shared';

export const Hasher = defineProtocol({
  methods: {
    // SHA-256 of `rounds` rounds over `text`, reporting progress in percent.
    hash: method(),
    // Who answers (to show the pool spreading calls).
    whoami: method(),
  },
  events: {
    busy: event(),
  },
});
