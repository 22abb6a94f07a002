// The IOCP groundwork (see pipe.h): state, completion packets, the watcher thread, init and
// shutdown. The exported pipe calls are in pipe-ends.cc.
#include "pipe.h"

namespace eicwin {

const char* ErrorName(DWORD err) {
  switch (err) {
    case ERROR_ACCESS_DENIED: return "ERROR_ACCESS_DENIED";
    case ERROR_INVALID_HANDLE: return "ERROR_INVALID_HANDLE";
    case ERROR_NOT_ENOUGH_MEMORY: return "ERROR_NOT_ENOUGH_MEMORY";
    case ERROR_INVALID_PARAMETER: return "ERROR_INVALID_PARAMETER";
    case ERROR_BROKEN_PIPE: return "ERROR_BROKEN_PIPE";
    case ERROR_PIPE_BUSY: return "ERROR_PIPE_BUSY";
    case ERROR_NO_DATA: return "ERROR_NO_DATA";
    case ERROR_PIPE_NOT_CONNECTED: return "ERROR_PIPE_NOT_CONNECTED";
    case ERROR_MORE_DATA: return "ERROR_MORE_DATA";
    case ERROR_PIPE_CONNECTED: return "ERROR_PIPE_CONNECTED";
    case ERROR_OPERATION_ABORTED: return "ERROR_OPERATION_ABORTED";
    case ERROR_IO_PENDING: return "ERROR_IO_PENDING";
    case ERROR_FILE_NOT_FOUND: return "ERROR_FILE_NOT_FOUND";
    default: return nullptr;
  }
}

// Throws an Error whose `code` is the Win32 error name (or WIN32_<n>), like the errno names
// of the POSIX backends, with `errno` the Win32 number and `syscall`.
[[noreturn]] void ThrowWin(Napi::Env env, DWORD err, const char* call) {
  const char* name = ErrorName(err);
  std::string code = name ? name : "WIN32_" + std::to_string(err);
  Napi::Error e = Napi::Error::New(env, std::string(call) + " failed: " + code);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, call));
  throw e;
}

bool IsGoneError(DWORD err) {
  // STATUS_PIPE_BROKEN, STATUS_PIPE_CLOSING, STATUS_PIPE_DISCONNECTED, STATUS_END_OF_FILE.
  return err == ERROR_BROKEN_PIPE || err == ERROR_NO_DATA || err == ERROR_PIPE_NOT_CONNECTED ||
         err == ERROR_HANDLE_EOF;
}

State* GetState(Napi::Env env) {
  State* s = env.GetInstanceData<State>();
  if (s == nullptr || s->stopped) {
    throw Napi::Error::New(env, "call init(callback) first (or it was shut down)");
  }
  return s;
}

End* GetEnd(const Napi::CallbackInfo& info, State* s) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "the first argument must be a pipe end id");
  }
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto it = s->ends.find(id);
  if (it == s->ends.end()) {
    throw Napi::Error::New(info.Env(), "no open pipe end " + std::to_string(id));
  }
  return it->second;
}

// The loop stays alive while an end is open (a callback may still come), not longer.
void UpdateRef(State* s) {
  bool want = !s->ends.empty();
  if (want == s->refed || s->tsfn == nullptr) return;
  if (want) {
    napi_ref_threadsafe_function(s->env, s->tsfn);
  } else {
    napi_unref_threadsafe_function(s->env, s->tsfn);
  }
  s->refed = want;
}

void FreeIfDone(State* s, End* e) {
  if (e->closed && !e->rop.inFlight && !e->wop.inFlight) {
    s->zombies.erase(e);
    delete e;
  }
}

// Posts the read of the next message (or of the rest of the current one) unless one is in
// flight, a message waits for recv, or the end cannot be read any more. A failure that posts
// no packet is recorded on the end and reported as readiness (returns true).
bool PostRead(End* e) {
  if (e->rop.inFlight || e->hasMessage || e->eof || e->readError || e->tooBig || e->closed) {
    return false;
  }
  if (e->rbuf.size() - e->rfill == 0) {
    // One byte over the limit, so that an oversized message cannot fit the buffer exactly.
    size_t grown = std::min(std::max(e->rbuf.size() * 2, kReadChunk), e->maxMessage + 1);
    if (grown <= e->rfill) {
      e->tooBig = true;
      return true;
    }
    e->rbuf.resize(grown);
  }
  memset(&e->rop.ov, 0, sizeof e->rop.ov);
  DWORD want = static_cast<DWORD>(e->rbuf.size() - e->rfill);
  BOOL ok = ReadFile(e->h, e->rbuf.data() + e->rfill, want, nullptr, &e->rop.ov);
  DWORD err = ok ? 0 : GetLastError();
  // Without FILE_SKIP_COMPLETION_PORT_ON_SUCCESS, an immediate success, a pending read and a
  // read that returned part of a message (ERROR_MORE_DATA, a warning status) all queue one
  // packet: the result is taken from the packet only.
  if (ok || err == ERROR_IO_PENDING || err == ERROR_MORE_DATA) {
    e->rop.inFlight = true;
    return false;
  }
  if (IsGoneError(err)) {
    e->eof = true;
    e->eofError = err;
  } else {
    e->readError = err;
  }
  return true;
}

// A completion packet of `op` (JS thread). Returns the readiness bits it produced.
int Complete(State* s, Op* op) {
  End* e = op->end;
  op->inFlight = false;
  NTSTATUS status = static_cast<NTSTATUS>(op->ov.Internal);
  size_t bytes = static_cast<size_t>(op->ov.InternalHigh);
  DWORD err = status == 0 ? 0 : RtlNtStatusToDosError(status);
  if (e->closed) {  // cancelled by close(), or finished just before it: nobody wants it
    FreeIfDone(s, e);
    return 0;
  }
  if (!op->read) {
    e->wbuf.clear();
    if (err != 0) e->writeError = err;
    if (err != 0 && IsGoneError(err)) e->writeGone = true;
    return kWritable;
  }
  if (status == STATUS_BUFFER_OVERFLOW) {  // part of a bigger message: read the rest
    e->rfill += bytes;
    return PostRead(e) ? kReadable : 0;
  }
  if (err == 0) {
    e->rfill += bytes;
    if (e->rfill > e->maxMessage) {  // it filled the buffer of maxMessage + 1 exactly
      e->tooBig = true;
      std::vector<uint8_t>().swap(e->rbuf);
      return kReadable;
    }
    e->message.assign(e->rbuf.begin(), e->rbuf.begin() + e->rfill);
    e->hasMessage = true;
    e->rfill = 0;
    if (e->rbuf.size() > kReadChunk) {  // do not keep a big buffer after a big message
      std::vector<uint8_t>().swap(e->rbuf);
    }
    return kReadable;
  }
  if (IsGoneError(err)) {
    e->eof = true;
    e->eofError = err;
  } else {
    e->readError = err;
  }
  return kReadable;
}

// Runs on the JS thread for each batch; env is null when the function is being torn down (then
// the batch is only freed).
void CallJs(napi_env env, napi_value callback, void* context, void* data) {
  Batch* batch = static_cast<Batch*>(data);
  State* s = static_cast<State*>(context);
  if (env == nullptr || s == nullptr) {
    delete batch;
    return;
  }
  std::vector<std::pair<uint32_t, int>> events;
  for (OVERLAPPED* ov : batch->ovs) {
    Op* op = reinterpret_cast<Op*>(ov);
    s->packets++;
    uint32_t id = op->end->id;
    int bits = Complete(s, op);  // may free op->end (a zombie)
    if (bits == 0) continue;
    auto it = std::find_if(events.begin(), events.end(),
                           [id](const std::pair<uint32_t, int>& p) { return p.first == id; });
    if (it == events.end()) {
      events.emplace_back(id, bits);
    } else {
      it->second |= bits;
    }
  }
  delete batch;
  // Every native state change is done before JS runs: a callback may close ends or throw.
  // Readiness is edge-triggered, so every event is delivered even when a callback throws: the
  // first exception is kept aside and thrown again at the end (it becomes uncaught).
  napi_value global;
  napi_get_global(env, &global);
  napi_value firstError = nullptr;
  for (auto& ev : events) {
    if (s->ends.find(ev.first) == s->ends.end()) continue;  // closed by an earlier callback
    napi_value argv[2];
    napi_create_uint32(env, ev.first, &argv[0]);
    napi_create_int32(env, ev.second, &argv[1]);
    if (napi_call_function(env, global, callback, 2, argv, nullptr) != napi_ok) {
      napi_value error;
      if (napi_get_and_clear_last_exception(env, &error) == napi_ok && firstError == nullptr) {
        firstError = error;
      }
    }
  }
  if (firstError != nullptr) napi_throw(env, firstError);
}

// The watcher thread: takes packets off the port and hands them to the JS thread. It touches
// nothing but the port and the thread-safe function.
DWORD WINAPI Watch(LPVOID arg) {
  State* s = static_cast<State*>(arg);
  HANDLE port = s->port;
  napi_threadsafe_function tsfn = s->tsfn;
  OVERLAPPED_ENTRY entries[64];
  for (;;) {
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(port, entries, 64, &n, INFINITE, FALSE)) {
      break;  // the port was closed under us: nothing more can come
    }
    Batch* batch = new Batch();
    bool quit = false;
    for (ULONG i = 0; i < n; i++) {
      if (entries[i].lpCompletionKey == kKeyQuit) {
        quit = true;
      } else if (entries[i].lpOverlapped != nullptr) {
        batch->ovs.push_back(entries[i].lpOverlapped);
      }
    }
    if (batch->ovs.empty() ||
        napi_call_threadsafe_function(tsfn, batch, napi_tsfn_blocking) != napi_ok) {
      delete batch;  // napi_closing: the environment is going away
    }
    if (quit) break;
  }
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return 0;
}

void CloseEnd(State* s, End* e) {
  s->ends.erase(e->id);
  e->closed = true;
  if (e->rop.inFlight || e->wop.inFlight) {
    CancelIoEx(e->h, nullptr);  // the cancelled ops still post their packets
    s->zombies.insert(e);
  }
  CloseHandle(e->h);
  e->h = INVALID_HANDLE_VALUE;
  FreeIfDone(s, e);
}

// Stops the watcher and closes every end (explicit shutdown(), or the environment's cleanup).
// Zombies whose packets never came back are leaked on purpose: the system may still write
// their OVERLAPPEDs, and this runs only at teardown.
void Stop(State* s) {
  if (s->stopped) return;
  s->stopped = true;
  std::vector<End*> open;
  for (auto& kv : s->ends) open.push_back(kv.second);
  for (End* e : open) CloseEnd(s, e);
  if (s->tsfn != nullptr && s->refed) {  // before the watcher releases the function
    napi_unref_threadsafe_function(s->env, s->tsfn);
    s->refed = false;
  }
  if (s->thread != nullptr) {
    PostQueuedCompletionStatus(s->port, 0, kKeyQuit, nullptr);
    WaitForSingleObject(s->thread, INFINITE);  // never blocks long: the queue is unlimited
    CloseHandle(s->thread);
    s->thread = nullptr;
  }
  s->tsfn = nullptr;  // released by the watcher; finalized by Node when its queue is empty
}

// The environment's cleanup hook. It runs before Node's own teardown of the thread-safe
// function (hooks run in reverse order of registration), but the function is not touched here.
void Cleanup(void* arg) {
  State* s = static_cast<State*>(arg);
  s->refed = false;
  Stop(s);
}

// The instance data finalizer: nothing (see the end of Init).
void KeepState(Napi::Env, State*) {}

// init(callback): creates this environment's completion port, the thread-safe function and
// the watcher thread. callback(id, bits) runs on the JS thread when end `id` became readable
// (bit 1: recv has a message, the end, or an error) or writable (bit 2: the write in flight
// finished). Readiness is edge-triggered: after a callback, call recv until it returns AGAIN.
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "init(callback): callback must be a function");
  }
  if (env.GetInstanceData<State>() != nullptr) {
    throw Napi::Error::New(env, "init was already called in this environment");
  }
  State* s = new State();
  s->env = env;
  s->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (s->port == nullptr) {
    DWORD err = GetLastError();
    delete s;
    ThrowWin(env, err, "CreateIoCompletionPort");
  }
  napi_value name;
  napi_create_string_utf8(env, "electron-ipc-channel:iocp", NAPI_AUTO_LENGTH, &name);
  napi_status st = napi_create_threadsafe_function(env, info[0], nullptr, name, 0, 1, nullptr,
                                                   nullptr, s, CallJs, &s->tsfn);
  if (st != napi_ok) {
    CloseHandle(s->port);
    delete s;
    throw Napi::Error::New(env, "napi_create_threadsafe_function failed");
  }
  napi_unref_threadsafe_function(env, s->tsfn);  // ref'd while an end is open (UpdateRef)
  s->thread = CreateThread(nullptr, 0, Watch, s, 0, nullptr);
  if (s->thread == nullptr) {
    DWORD err = GetLastError();
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
    CloseHandle(s->port);
    delete s;
    ThrowWin(env, err, "CreateThread");
  }
  // State is never freed: the port, and OVERLAPPEDs of zombies, may outlive the environment.
  env.SetInstanceData<State, KeepState>(s);
  napi_add_env_cleanup_hook(env, Cleanup, s);
  return env.Undefined();
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  State* s = info.Env().GetInstanceData<State>();
  if (s != nullptr) Stop(s);
  return info.Env().Undefined();
}

}  // namespace eicwin
