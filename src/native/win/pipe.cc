// Windows groundwork for the win32 transport (issue 13): overlapped message-mode named pipe
// pairs and an I/O completion port watcher thread that tells JS when an end became readable or
// writable. Built with mingw-w64 by scripts/test-windows.mjs and run under Wine's node.exe; not
// in binding.gyp yet (see docs/windows.md for what is left).
//
// Why not uv_poll: libuv polls sockets only on Windows, never pipes. Readiness comes from
// overlapped I/O instead: each open end keeps at most one read and one write in flight, every
// one of them posts exactly one completion packet to this environment's port, and a watcher
// thread forwards packets to the JS thread through a thread-safe function.
//
// Ends are named by small integer ids (the "descriptor" of a future win32 Transport), never by
// HANDLE values: a HANDLE is pointer-sized, reused by the system after CloseHandle, and
// meaningless in another process.
//
// Thread rules:
// - The JS thread (the one of the environment that called init) does everything: creates,
//   reads, writes, closes, and processes completion packets; all state in State and End is
//   touched only there.
// - The watcher thread only calls GetQueuedCompletionStatusEx on the port and hands each batch
//   of raw OVERLAPPED pointers to napi_call_threadsafe_function; it never dereferences them.
// - An End (and the OVERLAPPEDs inside it) is freed only on the JS thread, and only when none of
//   its operations is in flight: the system writes into an OVERLAPPED until its completion
//   packet is queued. close() therefore cancels, closes the HANDLE and keeps the End as a
//   zombie until its last packet (ERROR_OPERATION_ABORTED or a late success) comes back.
// - The thread-safe function has an unlimited queue, so the watcher never blocks in it; the
//   queue is bounded anyway by the operations in flight (two per end).
#ifndef _WIN32
#error "src/native/win/ is built for Windows only (mingw-w64 or MSVC)"
#endif

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <bcrypt.h>
#include <winternl.h>

#include <napi.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#ifndef STATUS_BUFFER_OVERFLOW
#define STATUS_BUFFER_OVERFLOW ((NTSTATUS)0x80000005L)
#endif

namespace eicwin {

// probe.cc: probes of Windows (Wine) behaviour the next steps depend on.
void RegisterProbes(Napi::Env env, Napi::Object exports);

// Results shared with the Transport interface (src/main/transport/types.ts).
constexpr int kAgain = -1;
constexpr int kGone = -2;
constexpr int kTooBig = -3;

// The most bytes one message may have (send refuses more, TOO_BIG); a peer's bigger message
// fails the receiving end (recv throws TOO_LARGE). pipePair(maxMessage) lowers it for tests.
constexpr size_t kMaxMessage = 16u << 20;
// First read buffer; a bigger message completes with STATUS_BUFFER_OVERFLOW and the rest is
// read into a grown buffer (the pipe keeps the rest of that message for the next read).
constexpr size_t kReadChunk = 64u << 10;
// The pipe's advisory buffer sizes (the system may round them).
constexpr DWORD kPipeBuffer = 64u << 10;

// Completion keys: packets of pipe ends, and the one that stops the watcher thread.
constexpr ULONG_PTR kKeyEnd = 1;
constexpr ULONG_PTR kKeyQuit = 2;

// Readiness bits given to the JS callback.
constexpr int kReadable = 1;
constexpr int kWritable = 2;

struct End;

// One overlapped operation. `ov` must stay the first member: the watcher gets OVERLAPPED*
// back from the port and the JS thread casts it to Op*.
struct Op {
  OVERLAPPED ov;
  End* end;
  bool read;
  bool inFlight;
};

struct End {
  uint32_t id = 0;
  HANDLE h = INVALID_HANDLE_VALUE;
  bool server = false;
  size_t maxMessage = kMaxMessage;  // the biggest message recv accepts from the peer
  bool closed = false;        // close() ran: zombie until no op is in flight
  Op rop{};                   // the read in flight, if rop.inFlight
  Op wop{};                   // the write in flight, if wop.inFlight
  std::vector<uint8_t> rbuf;  // the message being read (rfill bytes so far)
  size_t rfill = 0;
  std::vector<uint8_t> wbuf;  // the message being written (owned until its completion)
  // At most one whole message waits for recv(): the next read is posted only once JS took it,
  // so a peer that floods fills its own pipe quota, never this process's memory.
  bool hasMessage = false;
  std::vector<uint8_t> message;
  bool eof = false;       // the peer closed (ERROR_BROKEN_PIPE and friends)
  DWORD eofError = 0;     // the error that said so (reported by info())
  DWORD writeError = 0;   // the last error of a write (reported by info())
  DWORD readError = 0;    // a read failed otherwise; recv throws it
  bool tooBig = false;    // the peer sent more than kMaxMessage in one message
  bool writeGone = false; // a write saw the peer gone
};

struct State {
  napi_env env = nullptr;
  HANDLE port = nullptr;
  HANDLE thread = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  bool refed = false;
  bool stopped = false;
  uint32_t nextId = 1;
  std::unordered_map<uint32_t, End*> ends;  // open ends by id
  std::unordered_set<End*> zombies;         // closed ends with an op still in flight
  uint64_t packets = 0;                     // completion packets processed (for tests)
};

// A batch of completion packets, from the watcher thread to the JS thread.
struct Batch {
  std::vector<OVERLAPPED*> ovs;
};

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

std::wstring UnguessableName() {
  uint8_t random[16];
  if (!BCRYPT_SUCCESS(BCryptGenRandom(nullptr, random, sizeof random,
                                      BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
    return std::wstring();
  }
  wchar_t buf[96];
  int n = swprintf(buf, 96, L"\\\\.\\pipe\\eic-%lu-", GetCurrentProcessId());
  std::wstring name(buf, n);
  static const wchar_t hex[] = L"0123456789abcdef";
  for (uint8_t b : random) {
    name.push_back(hex[b >> 4]);
    name.push_back(hex[b & 15]);
  }
  return name;
}

End* NewEnd(State* s, HANDLE h, bool server, size_t maxMessage) {
  End* e = new End();
  e->id = s->nextId++;
  e->maxMessage = maxMessage;
  e->h = h;
  e->server = server;
  e->rop.end = e;
  e->rop.read = true;
  e->wop.end = e;
  e->wop.read = false;
  return e;
}

// pipePair(maxMessage?) -> [serverId, clientId]: a connected pair of overlapped message-mode
// pipe ends.
// The name is 128 random bits and the instance is the first and only one of that name, so no
// other process can take the server's place; a client that raced in before our CreateFileW
// makes it fail (ERROR_PIPE_BUSY) and the server's client process id is checked to be ours.
// The handles are not inheritable. Default DACL (next step: the current user only).
// maxMessage (1 .. MAX_MESSAGE, default MAX_MESSAGE) bounds what each end's recv accepts.
Napi::Value PipePair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = GetState(env);
  size_t maxMessage = kMaxMessage;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    double m = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (!(m >= 1 && m <= static_cast<double>(kMaxMessage)) || m != static_cast<size_t>(m)) {
      throw Napi::RangeError::New(env, "pipePair(maxMessage): an integer from 1 to MAX_MESSAGE");
    }
    maxMessage = static_cast<size_t>(m);
  }
  std::wstring name = UnguessableName();
  if (name.empty()) ThrowWin(env, GetLastError(), "BCryptGenRandom");
  SECURITY_ATTRIBUTES sa{sizeof sa, nullptr, FALSE};
  HANDLE server = CreateNamedPipeW(
      name.c_str(), PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
      kPipeBuffer, kPipeBuffer, 0, &sa);
  if (server == INVALID_HANDLE_VALUE) ThrowWin(env, GetLastError(), "CreateNamedPipeW");
  // SECURITY_IDENTIFICATION: the server side may identify, not impersonate, the client.
  HANDLE client = CreateFileW(name.c_str(), GENERIC_READ | GENERIC_WRITE, 0, &sa, OPEN_EXISTING,
                              FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
                                  SECURITY_IDENTIFICATION,
                              nullptr);
  if (client == INVALID_HANDLE_VALUE) {
    DWORD err = GetLastError();
    CloseHandle(server);
    ThrowWin(env, err, "CreateFileW");
  }
  DWORD fail = 0;
  const char* call = nullptr;
  DWORD mode = PIPE_READMODE_MESSAGE;
  ULONG clientPid = 0;
  if (!SetNamedPipeHandleState(client, &mode, nullptr, nullptr)) {
    fail = GetLastError();
    call = "SetNamedPipeHandleState";
  } else if (!GetNamedPipeClientProcessId(server, &clientPid)) {
    fail = GetLastError();
    call = "GetNamedPipeClientProcessId";
  } else if (clientPid != GetCurrentProcessId()) {
    fail = ERROR_ACCESS_DENIED;
    call = "GetNamedPipeClientProcessId (another process connected)";
  } else {
    // The client is connected already: ConnectNamedPipe reports ERROR_PIPE_CONNECTED and
    // queues nothing (the handles are not on the port yet, so no packet could be stray).
    OVERLAPPED ov{};
    ov.hEvent = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    if (ov.hEvent == nullptr) {
      fail = GetLastError();
      call = "CreateEventW";
    } else {
      if (ConnectNamedPipe(server, &ov)) {
        // Success with an overlapped handle: connected (seen on some systems).
      } else if (GetLastError() != ERROR_PIPE_CONNECTED) {
        fail = GetLastError();
        call = "ConnectNamedPipe";
        if (fail == ERROR_IO_PENDING || fail == ERROR_PIPE_LISTENING) {
          CancelIoEx(server, &ov);
          DWORD ignored;
          GetOverlappedResult(server, &ov, &ignored, TRUE);  // ov must outlive the op
        }
      }
      CloseHandle(ov.hEvent);
    }
  }
  if (fail == 0 && (CreateIoCompletionPort(server, s->port, kKeyEnd, 0) == nullptr ||
                    CreateIoCompletionPort(client, s->port, kKeyEnd, 0) == nullptr)) {
    fail = GetLastError();
    call = "CreateIoCompletionPort";
  }
  if (fail != 0) {
    CloseHandle(client);
    CloseHandle(server);
    ThrowWin(env, fail, call);
  }
  End* a = NewEnd(s, server, true, maxMessage);
  End* b = NewEnd(s, client, false, maxMessage);
  // Reads are posted at once: their completions are the readable events. A read that fails
  // at once posts no packet, so no event would tell about it: the pair is refused instead.
  if (PostRead(a) || PostRead(b)) {
    DWORD err = a->readError ? a->readError : b->readError ? b->readError : ERROR_BROKEN_PIPE;
    CloseEnd(s, a);
    CloseEnd(s, b);
    ThrowWin(env, err, "ReadFile");
  }
  s->ends[a->id] = a;
  s->ends[b->id] = b;
  UpdateRef(s);
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, a->id));
  pair.Set(1u, Napi::Number::New(env, b->id));
  return pair;
}

// send(id, bytes) -> bytes.length when accepted (copied; the write finishes in the background
// and its completion is a writable event), AGAIN while a write is in flight, GONE when the peer
// closed, TOO_BIG over kMaxMessage. One message per call, never split.
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = GetState(env);
  End* e = GetEnd(info, s);
  if (info.Length() < 2 || !info[1].IsTypedArray()) {
    throw Napi::TypeError::New(env, "send(id, bytes): bytes must be a Uint8Array");
  }
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  if (e->writeGone) return Napi::Number::New(env, kGone);
  if (bytes.ByteLength() > kMaxMessage) return Napi::Number::New(env, kTooBig);
  if (e->wop.inFlight) return Napi::Number::New(env, kAgain);
  e->wbuf.assign(bytes.Data(), bytes.Data() + bytes.ByteLength());
  memset(&e->wop.ov, 0, sizeof e->wop.ov);
  BOOL ok = WriteFile(e->h, e->wbuf.data(), static_cast<DWORD>(e->wbuf.size()), nullptr,
                      &e->wop.ov);
  DWORD err = ok ? 0 : GetLastError();
  if (ok || err == ERROR_IO_PENDING) {
    e->wop.inFlight = true;
    return Napi::Number::New(env, static_cast<double>(e->wbuf.size()));
  }
  e->wbuf.clear();
  e->writeError = err;
  if (IsGoneError(err)) {
    e->writeGone = true;
    return Napi::Number::New(env, kGone);
  }
  ThrowWin(env, err, "WriteFile");
}

// recv(id) -> the next whole message (Uint8Array), AGAIN when none is there yet, 0 at the end
// (the peer closed). Throws the read error, or a TOO_BIG error for an oversized message.
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = GetState(env);
  End* e = GetEnd(info, s);
  if (e->hasMessage) {
    Napi::Uint8Array out = Napi::Uint8Array::New(env, e->message.size());
    if (!e->message.empty()) memcpy(out.Data(), e->message.data(), e->message.size());
    e->hasMessage = false;
    std::vector<uint8_t>().swap(e->message);
    PostRead(e);  // a failure here shows at the next recv
    return out;
  }
  if (e->tooBig) {
    Napi::Error err = Napi::Error::New(
        env, "the peer sent a message over " + std::to_string(e->maxMessage) +
                 " bytes, more than this end accepts; close it (the peer is broken or hostile)");
    err.Set("code", Napi::String::New(env, "TOO_LARGE"));
    throw err;
  }
  if (e->readError) ThrowWin(env, e->readError, "ReadFile");
  if (e->eof) return Napi::Number::New(env, 0);
  return Napi::Number::New(env, kAgain);
}

// close(id): cancels what is in flight and closes the handle; the peer's reads see the end.
Napi::Value Close(const Napi::CallbackInfo& info) {
  State* s = GetState(info.Env());
  CloseEnd(s, GetEnd(info, s));
  UpdateRef(s);
  return info.Env().Undefined();
}

// info(id) -> { server, serverPid|null, clientPid|null, readInFlight, writeInFlight, endError,
// writeError }: the last two are the Win32 error names that ended reads / failed a write, or ''.
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = GetState(env);
  End* e = GetEnd(info, s);
  // null where the system no longer says (e.g. once the peer closed).
  ULONG serverPid = 0, clientPid = 0;
  bool haveServer = GetNamedPipeServerProcessId(e->h, &serverPid);
  bool haveClient = GetNamedPipeClientProcessId(e->h, &clientPid);
  Napi::Object o = Napi::Object::New(env);
  o.Set("server", Napi::Boolean::New(env, e->server));
  o.Set("serverPid", haveServer ? Napi::Value(Napi::Number::New(env, serverPid)) : env.Null());
  o.Set("clientPid", haveClient ? Napi::Value(Napi::Number::New(env, clientPid)) : env.Null());
  o.Set("readInFlight", Napi::Boolean::New(env, e->rop.inFlight));
  o.Set("writeInFlight", Napi::Boolean::New(env, e->wop.inFlight));
  auto name = [](DWORD err) {
    const char* n = ErrorName(err);
    return err == 0 ? std::string() : n ? std::string(n) : "WIN32_" + std::to_string(err);
  };
  o.Set("endError", Napi::String::New(env, name(e->eofError)));
  o.Set("writeError", Napi::String::New(env, name(e->writeError)));
  return o;
}

// stats() -> { open, zombies, packets }: for leak checks in tests.
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = env.GetInstanceData<State>();
  Napi::Object o = Napi::Object::New(env);
  o.Set("open", Napi::Number::New(env, s ? s->ends.size() : 0));
  o.Set("zombies", Napi::Number::New(env, s ? s->zombies.size() : 0));
  o.Set("packets", Napi::Number::New(env, s ? static_cast<double>(s->packets) : 0));
  return o;
}

Napi::Object Register(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  exports.Set("pipePair", Napi::Function::New(env, PipePair, "pipePair"));
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("recv", Napi::Function::New(env, Recv, "recv"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("stats", Napi::Function::New(env, Stats, "stats"));
  exports.Set("AGAIN", Napi::Number::New(env, kAgain));
  exports.Set("GONE", Napi::Number::New(env, kGone));
  exports.Set("TOO_BIG", Napi::Number::New(env, kTooBig));
  exports.Set("READABLE", Napi::Number::New(env, kReadable));
  exports.Set("WRITABLE", Napi::Number::New(env, kWritable));
  exports.Set("MAX_MESSAGE", Napi::Number::New(env, kMaxMessage));
  RegisterProbes(env, exports);
  return exports;
}

}  // namespace eicwin
