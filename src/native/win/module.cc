// The Windows addon's module: the win32 transport (ends.cc, io.cc, watch.cc, server.cc,
// crt.cc, registry.cc, shm.cc, lease.cc, lockdown.cc), shaped like the NativeBinding surface of
// src/main/native.ts.
#include "win.h"

namespace eicch {

namespace {

// Node unloads an addon (FreeLibrary) when the last environment that loaded it ends, e.g. a
// worker thread when the main thread never loaded it; code of the addon that still runs then
// (a thread-pool callback, a cleanup step) would execute unmapped memory (seen under Wine: a
// page fault at OnSignal's address). Pinned at the first load: the image stays until the process
// ends, as the POSIX addon's (-z nodelete, RTLD_NODELETE). Best effort: a failure leaves the
// usual reference counting, and teardown (below) leaves no callback registered anyway.
void PinImage() {
  HMODULE self = nullptr;
  GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                     reinterpret_cast<LPCWSTR>(reinterpret_cast<void*>(&PinImage)), &self);
}

// The environment's teardown (the end of a worker thread, or of the program), on its JS thread
// after JS stopped, as the POSIX addon's OnTeardown (src/native/addon.cc):
// 1. Handles parked for peer processes that have not taken them yet would die with this
//    process and their message would arrive without them: wait while they are taken (registry.cc
//    WaitParked: 5 s without progress, 30 s in all; before anything is closed: closing an end
//    with a pending write would cancel it and close its parked handles).
// 2. No wait stays registered (StopWatching): a thread-pool callback must not reach the
//    thread-safe function, which Node frees at teardown.
// 3. Every end, listener and section of the environment is closed: a peer sees the connection
//    end (DISCONNECTED), as when a POSIX environment's descriptors close, and nothing leaks.
// Runs outside node-addon-api's call wrapper: nothing may throw out of it (a C++ exception
// escaping into Node's cleanup would kill the process), hence the catch-all.
void Teardown(void* arg) {
  State* s = static_cast<State*>(arg);
  try {
    WaitParked(s, false);
    StopWatching(s);
    std::vector<End*> all;
    all.reserve(s->ends.size());
    for (auto& entry : s->ends) all.push_back(entry.second);
    for (End* e : all) CloseEnd(s, e);
  } catch (...) {
    // Only allocation can fail here; what is left open closes with the process.
  }
}

}  // namespace

// One State per environment (main thread, each worker), passed to every function as its data.
// Never freed: thread-pool callbacks may still hold it while the environment goes away.
Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  PinImage();
  State* s = new State();
  s->env = env;
  RegisterEnds(env, exports, s);
  RegisterWatch(env, exports, s);
  RegisterServer(env, exports, s);
  RegisterShm(env, exports, s);
  RegisterLease(env, exports, s);
  RegisterLockdown(env, exports);
  napi_add_env_cleanup_hook(env, Teardown, s);
  exports.Set("platform", Napi::String::New(env, "win32"));
  return exports;
}

}  // namespace eicch

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return eicch::InitModule(env, exports); }

NODE_API_MODULE(electron_ipc_channel, InitAll)
