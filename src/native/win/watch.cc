// Readiness of pipe ends for the JS thread (what uv_poll gives the POSIX backends), and the
// blocking waits of recvSync/selectSync.
//
// watch(id, bits): bit 1 readable (a message, the end or an error is there for recvPackets;
// for a listener, a client connected), bit 2 writable (no write in flight). A condition that
// holds now is delivered at once (through the thread-safe function, so always asynchronously);
// otherwise the operation that will end it is in flight (a read is posted for it) and its event
// is registered with RegisterWaitForSingleObject: a thread-pool thread then calls the
// thread-safe function, and the JS thread delivers callback(id, bits) if the end still watches
// those bits. Edge-triggered: after a callback, read until AGAIN (every AGAIN re-arms).
//
// Thread rules: Wait records are made and freed on the JS thread; the thread-pool callback reads
// its Wait (immutable while registered) and allocates one Delivery for the JS thread. A Wait is
// freed only after UnregisterWaitEx(INVALID_HANDLE_VALUE), which waits for its callback. Nothing
// that runs on a thread-pool thread may throw: a C++ exception has no handler there and kills the
// process (Windows, and Wine: "Unhandled exception 0x20474343", GCC's code for a C++ throw), so
// OnSignal allocates with std::nothrow and calls only the C thread-safe-function API.
//
// Teardown (issue 13): an environment (a worker thread, or the main thread at exit) ends while
// waits are registered and deliveries are queued. Node finalizes the thread-safe function then
// (its memory is freed once its handle closed), so a wait must never fire after that:
// StopWatching unregisters every wait of the environment (waiting for a callback in flight) and
// refuses new ones; module.cc's cleanup hook calls it before closing the environment's ends, and
// the thread-safe function's finalizer calls it too (whichever runs first). A callback that runs
// between Node's closing of the function and StopWatching gets napi_closing and drops its Delivery.
#include "win.h"

#include <new>

namespace eicch {

namespace {

struct Delivery {
  int32_t id;
  int bits;
};

// Any thread (the JS thread, or a thread-pool thread in OnSignal): never throws. A delivery that
// cannot be queued (no memory, the function closing at teardown) is dropped: at teardown nobody
// listens any more, and otherwise the end stays armed (the next AGAIN re-arms it).
void Deliver(State* s, int32_t id, int bits) noexcept {
  if (s->tsfn == nullptr) return;
  Delivery* d = new (std::nothrow) Delivery{id, bits};
  if (d == nullptr) return;
  if (napi_call_threadsafe_function(s->tsfn, d, napi_tsfn_nonblocking) != napi_ok) delete d;
}

// Thread-pool thread (RegisterWaitForSingleObject): see the thread rules above.
VOID CALLBACK OnSignal(PVOID arg, BOOLEAN) noexcept {
  Wait* w = static_cast<Wait*>(arg);
  Deliver(w->s, w->id, w->bits);
}

// JS thread, at the environment's teardown: Node finalizes the thread-safe function (see the file
// comment). Runs before the function's memory is freed.
void OnFinalize(napi_env, void* data, void*) {
  State* s = static_cast<State*>(data);
  StopWatching(s);
  s->tsfn = nullptr;
}

void Unregister(Wait*& w) {
  if (w == nullptr) return;
  UnregisterWaitEx(w->wait, INVALID_HANDLE_VALUE);
  delete w;
  w = nullptr;
}

bool Register(State* s, End* e, HANDLE ev, int bits, Wait*& slot) {
  if (slot != nullptr) return true;
  if (s->stopped) return false;  // the environment is being torn down (StopWatching)
  Wait* w = new Wait{s, e->id, bits, nullptr};
  if (!RegisterWaitForSingleObject(&w->wait, ev, OnSignal, w, INFINITE, WT_EXECUTEONLYONCE | WT_EXECUTEINWAITTHREAD)) {
    delete w;
    return false;
  }
  slot = w;
  return true;
}

// JS thread: a Delivery from a thread-pool thread or from Arm.
void CallJs(napi_env env, napi_value cb, void* context, void* data) {
  Delivery* d = static_cast<Delivery*>(data);
  State* s = static_cast<State*>(context);
  int32_t id = d->id;
  int bits = d->bits;
  delete d;
  if (env == nullptr || cb == nullptr) return;
  auto it = s->ends.find(id);
  if (it == s->ends.end()) return;  // closed since
  End* e = it->second;
  if (bits & kReadable) Unregister(e->rWait);
  if (bits & kWritable) Unregister(e->wWait);
  e->queued &= ~bits;
  bits &= e->watch;
  if (bits == 0) return;
  napi_value undefined, argv[2];
  napi_get_undefined(env, &undefined);
  napi_create_int32(env, id, &argv[0]);
  napi_create_int32(env, bits, &argv[1]);
  napi_call_function(env, undefined, cb, 2, argv, nullptr);  // an exception goes to the loop
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "init(callback): callback must be a function");
  if (s->tsfn != nullptr) throw Napi::Error::New(env, "init was already called in this environment");
  napi_value name;
  napi_create_string_utf8(env, "electron-ipc-channel:win32", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, info[0], nullptr, name, 0, 1, s, OnFinalize, s, CallJs, &s->tsfn) != napi_ok) {
    throw Napi::Error::New(env, "napi_create_threadsafe_function failed");
  }
  napi_unref_threadsafe_function(env, s->tsfn);  // ref'd while a ref'd watch is active (ref())
  return env.Undefined();
}

// watch(id, bits): see the file comment; 0 stops watching.
Napi::Value Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  End* e = GetEnd(s, env, info[0]);
  if (e->section) throw Napi::TypeError::New(env, "watch: a section has no readiness");
  e->watch = info[1].As<Napi::Number>().Int32Value() & (kReadable | kWritable);
  Arm(s, e);
  return env.Undefined();
}

// ref(delta): the thread-safe function keeps the event loop alive while the count is above 0.
Napi::Value Ref(const Napi::CallbackInfo& info) {
  State* s = StateOf(info);
  int before = s->refs;
  s->refs += info[0].As<Napi::Number>().Int32Value();
  if (s->tsfn != nullptr && before <= 0 && s->refs > 0) napi_ref_threadsafe_function(info.Env(), s->tsfn);
  if (s->tsfn != nullptr && before > 0 && s->refs <= 0) napi_unref_threadsafe_function(info.Env(), s->tsfn);
  return info.Env().Undefined();
}

void Ids(Napi::Env env, const Napi::Value& v, std::vector<int32_t>* out) {
  if (v.IsNumber()) {
    out->push_back(v.As<Napi::Number>().Int32Value());
  } else if (v.IsTypedArray()) {
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    for (size_t i = 0; i < a.ElementLength(); i++) out->push_back(a[i]);
  } else if (!v.IsNull() && !v.IsUndefined()) {
    throw Napi::TypeError::New(env, "waitFds: ids must be a number or an Int32Array");
  }
}

// waitFds(readIds, writeIds, timeoutMs): 1 when a read id is ready, 2 when a write id is
// writable, 0 at the timeout (-1: none). At most 64 ids in all (WaitForMultipleObjects).
Napi::Value WaitFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  std::vector<int32_t> rids, wids;
  Ids(env, info[0], &rids);
  Ids(env, info[1], &wids);
  double t = info[2].As<Napi::Number>().DoubleValue();
  if (rids.size() + wids.size() > MAXIMUM_WAIT_OBJECTS) {
    throw Napi::RangeError::New(env, "waitFds: at most 64 pipe ends at once on Windows");
  }
  ULONGLONG deadline = t < 0 ? 0 : GetTickCount64() + static_cast<ULONGLONG>(t);
  for (;;) {
    std::vector<HANDLE> hs;
    for (int32_t id : rids) {
      End* e = GetEnd(s, env, Napi::Number::New(env, id));
      if (ReadReady(e)) return Napi::Number::New(env, 1);
      PostRead(e);
      if (ReadReady(e)) return Napi::Number::New(env, 1);
      hs.push_back(e->rev);
    }
    for (int32_t id : wids) {
      End* e = GetEnd(s, env, Napi::Number::New(env, id));
      Settle(e);
      if (!e->wPending) return Napi::Number::New(env, 2);
      hs.push_back(e->wev);
    }
    DWORD ms = INFINITE;
    if (t >= 0) {
      ULONGLONG now = GetTickCount64();
      if (now >= deadline) return Napi::Number::New(env, 0);
      ms = static_cast<DWORD>(deadline - now);
    }
    if (hs.empty()) {
      Sleep(ms == INFINITE ? 0 : ms);
      if (ms == INFINITE) throw Napi::RangeError::New(env, "waitFds: nothing to wait for and no timeout");
      return Napi::Number::New(env, 0);
    }
    DWORD r = WaitForMultipleObjects(static_cast<DWORD>(hs.size()), hs.data(), FALSE, ms);
    if (r == WAIT_TIMEOUT) return Napi::Number::New(env, 0);
    if (r == WAIT_FAILED) ThrowWin(env, GetLastError(), "WaitForMultipleObjects");
    // Something finished: the loop settles it (a part of a big message re-posts its read).
  }
}

// From the JS thread: at most one delivery of each bit queued per end.
void DeliverOnce(State* s, End* e, int bit) {
  if (e->queued & bit) return;
  e->queued |= bit;
  Deliver(s, e->id, bit);
}

}  // namespace

void Arm(State* s, End* e) {
  if (e->watch & kReadable) {
    if (ReadReady(e)) {
      Unregister(e->rWait);
      DeliverOnce(s, e, kReadable);
    } else {
      PostRead(e);
      if (ReadReady(e)) DeliverOnce(s, e, kReadable);
      else Register(s, e, e->rev, kReadable, e->rWait);
    }
  } else {
    Unregister(e->rWait);
  }
  if (e->watch & kWritable) {
    Settle(e);
    if (!e->wPending) DeliverOnce(s, e, kWritable);
    else Register(s, e, e->wev, kWritable, e->wWait);
  } else {
    Unregister(e->wWait);
  }
}

void Disarm(State*, End* e) {
  e->watch = 0;
  Unregister(e->rWait);
  Unregister(e->wWait);
}

void StopWatching(State* s) {
  s->stopped = true;
  for (auto& entry : s->ends) Disarm(s, entry.second);
}

void RegisterWatch(Napi::Env env, Napi::Object exports, State* s) {
  exports.Set("init", Napi::Function::New(env, Init, "init", s));
  exports.Set("watch", Napi::Function::New(env, Watch, "watch", s));
  exports.Set("ref", Napi::Function::New(env, Ref, "ref", s));
  exports.Set("waitFds", Napi::Function::New(env, WaitFds, "waitFds", s));
}

}  // namespace eicch
