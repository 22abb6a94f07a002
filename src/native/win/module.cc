// The Windows addon's module: the win32 transport (ends.cc, io.cc, watch.cc, server.cc,
// crt.cc, registry.cc, shm.cc, lease.cc, lockdown.cc), shaped like the NativeBinding surface of
// src/main/native.ts.
#include "win.h"

namespace eicch {

// At teardown (the end of the program, a worker's end), handles parked for peer processes that
// have not taken them yet would die with this process and their message would arrive without
// them: wait for them, at most 2 s in all, polling every 10 ms.
static void WaitParked(void*) {
  for (int i = 0; i < 200 && ParkedPending() > 0; i++) Sleep(10);
}

// One State per environment (main thread, each worker), passed to every function as its data.
// Never freed: thread-pool callbacks may still hold it while the environment goes away.
Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  State* s = new State();
  s->env = env;
  RegisterEnds(env, exports, s);
  RegisterWatch(env, exports, s);
  RegisterServer(env, exports, s);
  RegisterShm(env, exports, s);
  RegisterLease(env, exports, s);
  RegisterLockdown(env, exports);
  napi_add_env_cleanup_hook(env, WaitParked, nullptr);
  exports.Set("platform", Napi::String::New(env, "win32"));
  return exports;
}

}  // namespace eicch

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return eicch::InitModule(env, exports); }

NODE_API_MODULE(electron_ipc_channel, InitAll)
