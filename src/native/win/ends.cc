// The table of pipe ends (ids >= kIdBase) of one environment: pairs, close, dup, what an id
// is, hang-up checks, and the calls of the NativeBinding surface that have no Windows meaning.
// JS thread only.
#include "win.h"

#include <bcrypt.h>
#include <winternl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace eicch {

State* StateOf(const Napi::CallbackInfo& info) { return static_cast<State*>(info.Data()); }

std::string ErrorCode(DWORD err) {
  switch (err) {
    case ERROR_FILE_NOT_FOUND: return "ENOENT";
    case ERROR_ACCESS_DENIED: return "EACCES";
    case ERROR_INVALID_HANDLE: return "EBADF";
    case ERROR_NOT_ENOUGH_MEMORY: return "ENOMEM";
    case ERROR_INVALID_PARAMETER: return "EINVAL";
    case ERROR_BROKEN_PIPE: return "EPIPE";
    case ERROR_NO_DATA: return "EPIPE";
    case ERROR_PIPE_BUSY: return "EBUSY";
    case ERROR_PIPE_NOT_CONNECTED: return "ENOTCONN";
    case ERROR_OPERATION_ABORTED: return "ECANCELED";
    default: return "WIN32_" + std::to_string(err);
  }
}

bool IsGone(DWORD err) {
  return err == ERROR_BROKEN_PIPE || err == ERROR_NO_DATA || err == ERROR_PIPE_NOT_CONNECTED ||
         err == ERROR_HANDLE_EOF;
}

// An Error whose `code` is the POSIX name the typed layer knows (ENOENT, EPIPE...) or
// WIN32_<n>, with `errno` the Win32 error and `syscall`.
[[noreturn]] void ThrowWin(Napi::Env env, DWORD err, const char* call) {
  char text[256];
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, err, 0, text,
                           sizeof text, nullptr);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == '.')) text[--n] = 0;
  std::string code = ErrorCode(err);
  std::string msg = std::string(call) + " failed: " + (n > 0 ? text : "error") + " (" + code + ", " +
                    std::to_string(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, call));
  throw e;
}

End* GetEnd(State* s, Napi::Env env, const Napi::Value& v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, "expected a pipe end id (a number)");
  int32_t id = v.As<Napi::Number>().Int32Value();
  auto it = s->ends.find(id);
  if (it == s->ends.end()) {
    Napi::Error e = Napi::Error::New(env, "not an open pipe end of this environment: " + std::to_string(id));
    e.Set("code", Napi::String::New(env, "EBADF"));
    throw e;
  }
  return it->second;
}

End* NewEnd(State* s, HANDLE h, bool server) {
  End* e = new End();
  e->id = s->nextId++;
  if (s->nextId < kIdBase) s->nextId = kIdBase;  // never reached: 2^31 - 2^24 ids per environment
  e->h = h;
  e->server = server;
  e->rev = CreateEventW(nullptr, TRUE, FALSE, nullptr);
  e->wev = CreateEventW(nullptr, TRUE, TRUE, nullptr);
  s->ends[e->id] = e;
  return e;
}

// Waits (bounded) for a cancelled operation's result: the system writes into the OVERLAPPED
// until it completes, so the End is freed only after. CancelIoEx of a pipe read or write ends it
// at once in practice; if it does not within 5 s, the End is leaked rather than freed in use.
static bool Finish(HANDLE h, OVERLAPPED* ov, HANDLE ev) {
  CancelIoEx(h, ov);
  return WaitForSingleObject(ev, 5000) == WAIT_OBJECT_0 && HasOverlappedIoCompleted(ov);
}

void CloseEnd(State* s, End* e) {
  s->ends.erase(e->id);
  Disarm(s, e);
  bool done = true;
  if (e->rPending && !HasOverlappedIoCompleted(&e->rov)) done = Finish(e->h, &e->rov, e->rev) && done;
  if (e->wPending && !HasOverlappedIoCompleted(&e->wov)) done = Finish(e->h, &e->wov, e->wev) && done;
  Settle(e);  // a cancelled write's handles are closed here (a listener's connect: nothing)
  // During the environment's exit, an end whose parked handles are not taken yet stays open
  // for the exit wait, which closes it (registry.cc); else it is forgotten there and closed.
  if (e->listener || !ParkEndClosing(s, e->h)) CloseHandle(e->h);
  LeaseClose(e);
  if (!e->name.empty()) OpenAdd(e->name, e->server, -1);
  if (!done) return;  // leaked on purpose, see Finish
  CloseHandle(e->rev);
  CloseHandle(e->wev);
  delete e;
}

namespace {

// pair(carrierOf?) -> [serverId, clientId]: a connected pair of overlapped message-mode pipe
// ends. carrierOf: the id of a receiver's end being moved, whose carrier this pair is (the typed
// layer writes what the receiver read ahead into the server end, and sends the client end in its
// place): when moveProblem(carrierOf, via) saw the move leave the process (End::movesOut), the
// server end never sends handles by token (End::remoteOnly): only this process could redeem a
// token, and the carrier's reader will be in another one. A move within the process keeps
// tokens (the reader is here, and a process never takes parked handles from its own pid).
// The name is 128 random bits and the instance the first and only one of that name, so no other
// process can take the server's place; the server's client process id is checked to be ours.
// Not inheritable; default DACL (the client connects at once, in this call).
Napi::Value Pair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  uint8_t random[16];
  if (!BCRYPT_SUCCESS(BCryptGenRandom(nullptr, random, sizeof random, BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
    ThrowWin(env, GetLastError(), "BCryptGenRandom");
  }
  wchar_t buf[96];
  int n = swprintf(buf, 96, L"\\\\.\\pipe\\eic-%lu-", GetCurrentProcessId());
  std::wstring name(buf, n);
  static const wchar_t hex[] = L"0123456789abcdef";
  for (uint8_t b : random) {
    name.push_back(hex[b >> 4]);
    name.push_back(hex[b & 15]);
  }
  HANDLE server = CreateNamedPipeW(
      name.c_str(), PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1, kPipeBuffer,
      kPipeBuffer, 0, nullptr);
  if (server == INVALID_HANDLE_VALUE) ThrowWin(env, GetLastError(), "CreateNamedPipeW");
  HANDLE client = CreateFileW(name.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                              FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, nullptr);
  if (client == INVALID_HANDLE_VALUE) {
    DWORD err = GetLastError();
    CloseHandle(server);
    ThrowWin(env, err, "CreateFileW");
  }
  DWORD mode = PIPE_READMODE_MESSAGE;
  ULONG pid = 0;
  DWORD fail = 0;
  const char* call = nullptr;
  if (!SetNamedPipeHandleState(client, &mode, nullptr, nullptr)) {
    fail = GetLastError();
    call = "SetNamedPipeHandleState";
  } else if (!GetNamedPipeClientProcessId(server, &pid) || pid != GetCurrentProcessId()) {
    fail = ERROR_ACCESS_DENIED;
    call = "GetNamedPipeClientProcessId (another process connected)";
  }
  if (fail != 0) {
    CloseHandle(client);
    CloseHandle(server);
    ThrowWin(env, fail, call);
  }
  std::wstring id = PipeNameOf(server);
  if (id.empty()) id = name;
  End* a = NewEnd(s, server, true);
  End* b = NewEnd(s, client, false);
  if (info.Length() > 0 && info[0].IsNumber()) {
    auto it = s->ends.find(info[0].As<Napi::Number>().Int32Value());
    a->remoteOnly = it != s->ends.end() && it->second->movesOut;
  }
  a->name = id;
  b->name = id;
  OpenAdd(id, true, 1);
  OpenAdd(id, false, 1);
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, a->id));
  pair.Set(1u, Napi::Number::New(env, b->id));
  return pair;
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  if (info[0].IsNumber() && info[0].As<Napi::Number>().Int32Value() < kIdBase) {
    int fd = info[0].As<Napi::Number>().Int32Value();
    if (CrtClose(env, fd) != 0) ThrowWin(env, ERROR_INVALID_HANDLE, "close");
    return env.Undefined();
  }
  CloseEnd(s, GetEnd(s, env, info[0]));
  return env.Undefined();
}

// dup(id): a new id for a duplicate of the same pipe end, or of a C runtime descriptor.
Napi::Value Dup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  bool crt = info[0].IsNumber() && info[0].As<Napi::Number>().Int32Value() < kIdBase;
  HANDLE src = crt ? CrtHandle(info[0].As<Napi::Number>().Int32Value()) : GetEnd(s, env, info[0])->h;
  if (src == INVALID_HANDLE_VALUE) ThrowWin(env, ERROR_INVALID_HANDLE, "dup");
  HANDLE d = nullptr;
  if (!DuplicateHandle(GetCurrentProcess(), src, GetCurrentProcess(), &d, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
    ThrowWin(env, GetLastError(), "DuplicateHandle");
  }
  if (crt) {
    int fd = CrtOpen(d);
    if (fd < 0) {
      CloseHandle(d);
      ThrowWin(env, ERROR_INVALID_HANDLE, "uv_open_osfhandle");
    }
    return Napi::Number::New(env, fd);
  }
  End* from = GetEnd(s, env, info[0]);
  HANDLE lease = nullptr;  // a pool segment's lease: the duplicate carries the segment too
  if (from->lease != nullptr && !LeaseDup(from, &lease)) {
    DWORD err = GetLastError();
    CloseHandle(d);
    ThrowWin(env, err, "DuplicateHandle");
  }
  End* e = NewEnd(s, d, from->server);
  e->lease = lease;
  e->leaseSize = from->leaseSize;
  e->section = from->section;
  e->size = from->size;
  e->name = from->name;
  OpenAdd(e->name, e->server, 1);
  return Napi::Number::New(env, e->id);
}

// fdInfo(id, out): [kind index, size, seals, listening, connected, domain index] as in
// src/main/native.ts: an end is a 'message-pipe' (9) of domain 'unix' (1: local only,
// PIPE_REJECT_REMOTE_CLIENTS), a section a 'section' (10) with its size; a C runtime
// descriptor is a 'file' (6), 'pipe' (7) or 'other'.
Napi::Value FdInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  double r[6] = {0, 0, 0, 0, 0, 0};
  int32_t id = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1;
  if (id >= kIdBase) {
    End* e = GetEnd(s, env, info[0]);
    if (e->section) {
      r[0] = 10;
      r[1] = static_cast<double>(e->size);
    } else {
      r[0] = 9;
      r[3] = e->listener ? 1 : 0;
      r[4] = e->listener ? 0 : 1;
      r[5] = 1;
    }
  } else {
    HANDLE h = CrtHandle(id);
    if (h == INVALID_HANDLE_VALUE) ThrowWin(env, ERROR_INVALID_HANDLE, "fdInfo");
    DWORD type = GetFileType(h);
    if (type == FILE_TYPE_DISK) {
      LARGE_INTEGER size{};
      r[0] = 6;
      if (GetFileSizeEx(h, &size)) r[1] = static_cast<double>(size.QuadPart);
    } else if (type == FILE_TYPE_PIPE) {
      r[0] = 7;
    }
  }
  if (info.Length() > 1 && info[1].IsTypedArray()) {
    Napi::Float64Array out = info[1].As<Napi::Float64Array>();
    size_t n = out.ElementLength() >= 6 ? 6 : 4;
    for (size_t i = 0; i < n; i++) out[i] = r[i];
    return env.Undefined();
  }
  static const char* kinds[] = {"other", "socket", "seqpacket", "stream-socket", "dgram-socket", "memfd", "file", "pipe", "dir", "message-pipe", "section"};
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", kinds[static_cast<int>(r[0])]);
  o.Set("size", r[1]);
  o.Set("seals", 0);
  o.Set("listening", r[3] == 1);
  o.Set("connected", r[4] == 1);
  o.Set("domain", r[5] == 1 ? "unix" : "none");
  return o;
}

// peerHungUp(id): the peer closed (a read saw the end, or PeekNamedPipe says the pipe is broken).
Napi::Value PeerHungUp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  End* e = GetEnd(StateOf(info), env, info[0]);
  if (e->listener || e->section) return Napi::Boolean::New(env, false);
  Settle(e);
  if (e->eof || e->writeGone) return Napi::Boolean::New(env, true);
  DWORD avail = 0;
  if (!PeekNamedPipe(e->h, nullptr, 0, nullptr, &avail, nullptr)) {
    return Napi::Boolean::New(env, IsGone(GetLastError()));
  }
  return Napi::Boolean::New(env, false);
}

// moveProblem(id, via?): why this end cannot be sent now, or undefined. A read in flight is
// cancelled first (a message it already took stays here, and is the problem: the typed layer
// then reads it into the receiver's queue, which travels on a carrier, and asks again); a queued
// message that carries handles by token (this process's registry) would be lost elsewhere.
// via: the end the receiver is about to be sent through: whether its peer is in another process
// is noted on this end (End::movesOut) for the carrier pair the move may make right after
// (pair(carrierOf)). Every move asks this right before it detaches the receiver, so the note
// is always that of the move under way.
Napi::Value MoveProblem(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  End* e = GetEnd(s, env, info[0]);
  if (info.Length() > 1 && info[1].IsNumber()) {
    auto it = s->ends.find(info[1].As<Napi::Number>().Int32Value());
    End* via = it == s->ends.end() ? nullptr : it->second;
    // A via that is not a pipe end of this table cannot deliver here: count it as leaving.
    e->movesOut = via == nullptr || via->section || via->listener || !PeerIsLocal(via->name, via->server);
  }
  if (e->rPending && !HasOverlappedIoCompleted(&e->rov)) {
    CancelIoEx(e->h, &e->rov);
    WaitForSingleObject(e->rev, 5000);
  }
  Settle(e);
  if (e->hasMsg || e->rfill > 0 || e->rPending) {
    return Napi::String::New(env, "it has read a message that is not received yet; send it after its next recv()");
  }
  uint8_t head[kHeader];
  DWORD got = 0, avail = 0, left = 0;
  if (PeekNamedPipe(e->h, head, sizeof head, &got, &avail, &left) && got == kHeader && (head[12] & kModeLocal) != 0) {
    return Napi::String::New(env, "a message queued for it carries handles that only this process can deliver; send it after its next recv()");
  }
  return env.Undefined();
}

// atExit(): called from the environment's 'exit' event, before the typed layer's exit flush
// writes what is queued: ends closed from then on keep their pipe for the exit wait while
// handles parked through them are not taken (State::exiting).
Napi::Value AtExit(const Napi::CallbackInfo& info) {
  StateOf(info)->exiting = true;
  return info.Env().Undefined();
}

// isSocketPeer(a, b): whether ends a and b are the two ends of one pipe (the typed layer's
// "a receiver cannot be sent through its own channel" check). Both must be pipe ends of this
// table, of one name, one the server end and one the client end. A name identifies one pipe
// only when the pipe has a single instance (pair() makes them so: 128 random bits and
// nMaxInstances 1, asked of the system with GetNamedPipeInfo); an IpcServer name has one
// instance per connection, whose ends cannot be told apart by name, so there the answer is
// null (unknown: the typed layer lets the send through, as on systems without sock_diag).
Napi::Value IsSocketPeer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  auto find = [&](const Napi::Value& v) -> End* {
    if (!v.IsNumber()) return nullptr;
    auto it = s->ends.find(v.As<Napi::Number>().Int32Value());
    End* e = it == s->ends.end() ? nullptr : it->second;
    return e != nullptr && !e->section && !e->listener && !e->name.empty() ? e : nullptr;
  };
  End* a = find(info[0]);
  End* b = find(info[1]);
  if (a == nullptr || b == nullptr) return env.Null();
  if (a->name != b->name) return Napi::Boolean::New(env, false);
  DWORD max = 0;
  if (!GetNamedPipeInfo(a->h, nullptr, nullptr, nullptr, &max) || max != 1) return env.Null();
  return Napi::Boolean::New(env, a->server != b->server);
}

// handleCount(): this process's open handles, for leak checks. GetProcessHandleCount first;
// Wine 8 answers it with 0 (ProcessHandleCount is a stub there), so then the entries of this
// process in NtQuerySystemInformation(SystemHandleInformation), which wineserver does list.
// -1 when neither answers. openCount(): ends in this table.
Napi::Value HandleCount(const Napi::CallbackInfo& info) {
  DWORD n = 0;
  if (GetProcessHandleCount(GetCurrentProcess(), &n) && n > 0) return Napi::Number::New(info.Env(), n);
  struct Entry {  // SYSTEM_HANDLE_TABLE_ENTRY_INFO
    ULONG pid;
    UCHAR type;
    UCHAR flags;
    USHORT value;
    PVOID object;
    ULONG access;
  };
  std::vector<uint8_t> buf(1u << 16);
  NTSTATUS st = 0;
  for (int i = 0; i < 12; i++) {
    ULONG need = 0;
    st = NtQuerySystemInformation(static_cast<SYSTEM_INFORMATION_CLASS>(16), buf.data(), static_cast<ULONG>(buf.size()), &need);
    if (st != static_cast<NTSTATUS>(0xC0000004)) break;  // STATUS_INFO_LENGTH_MISMATCH: grow
    buf.resize(need > buf.size() ? need + 4096 : buf.size() * 2);
  }
  if (st != 0) return Napi::Number::New(info.Env(), -1);
  ULONG count = 0;
  memcpy(&count, buf.data(), sizeof count);
  const size_t first = sizeof(void*);  // the count, padded to the entries' alignment
  if (first + static_cast<size_t>(count) * sizeof(Entry) > buf.size()) return Napi::Number::New(info.Env(), -1);
  DWORD self = GetCurrentProcessId();
  double mine = 0;
  for (ULONG i = 0; i < count; i++) {
    Entry e;
    memcpy(&e, buf.data() + first + i * sizeof(Entry), sizeof e);
    if (e.pid == self) mine++;
  }
  return Napi::Number::New(info.Env(), mine);
}

Napi::Value OpenCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(StateOf(info)->ends.size()));
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("open", static_cast<double>(StateOf(info)->ends.size()));
  o.Set("localTokens", static_cast<double>(LocalCount()));
  return o;
}

// testRawWrite(id, bytes) -> bytes written: one message of exactly these bytes, without the
// addon's header, waited for (at most 5 s): what a hostile peer can write. For tests only.
Napi::Value TestRawWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  End* e = GetEnd(StateOf(info), env, info[0]);
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  OVERLAPPED ov{};
  ov.hEvent = CreateEventW(nullptr, TRUE, FALSE, nullptr);
  BOOL ok = WriteFile(e->h, bytes.Data(), static_cast<DWORD>(bytes.ByteLength()), nullptr, &ov);
  DWORD err = ok ? 0 : GetLastError();
  if (!ok && err == ERROR_IO_PENDING && WaitForSingleObject(ov.hEvent, 5000) != WAIT_OBJECT_0) {
    CancelIoEx(e->h, &ov);
    WaitForSingleObject(ov.hEvent, INFINITE);
  }
  if (ok || err == ERROR_IO_PENDING) err = ov.Internal == 0 ? 0 : RtlNtStatusToDosError(static_cast<NTSTATUS>(ov.Internal));
  CloseHandle(ov.hEvent);
  if (err != 0) ThrowWin(env, err, "WriteFile");
  return Napi::Number::New(env, static_cast<double>(ov.InternalHigh));
}

// testHandleValue(id) -> the HANDLE value behind an end or a C runtime descriptor (what a
// hostile peer would have to guess to name it in a forged message). For tests only.
Napi::Value TestHandleValue(const Napi::CallbackInfo& info) {
  if (info[0].IsNumber() && info[0].As<Napi::Number>().Int32Value() < kIdBase) {
    HANDLE h = CrtHandle(info[0].As<Napi::Number>().Int32Value());
    if (h == INVALID_HANDLE_VALUE) ThrowWin(info.Env(), ERROR_INVALID_HANDLE, "testHandleValue");
    return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(h)));
  }
  End* e = GetEnd(StateOf(info), info.Env(), info[0]);
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(e->h)));
}

// Calls of the POSIX surface with nothing to do for a message pipe: the typed layer's blocking
// and buffer tuning (reads here never block unless asked), and shutdownWrite.
Napi::Value Nothing(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

Napi::Value SetBufferSizes(const Napi::CallbackInfo& info) {
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, kPipeBuffer);
  a.Set(1u, kPipeBuffer);
  return a;
}

}  // namespace

namespace {

// The process's exit wait (an environment's is in its teardown, module.cc): process.exit() on
// the main thread (and a fatal error) call exit() without running environment cleanup hooks,
// so the addon's atexit (run at its DLL detach) waits too.
void WaitParkedAtExit() { WaitParked(nullptr, true); }

}  // namespace

void RegisterEnds(Napi::Env env, Napi::Object exports, State* s) {
  static LONG atexitDone = 0;
  if (InterlockedExchange(&atexitDone, 1) == 0) atexit(WaitParkedAtExit);
  auto fn = [&](const char* name, Napi::Function::Callback cb) {
    exports.Set(name, Napi::Function::New(env, cb, name, s));
  };
  fn("socketpair", Pair);
  fn("close", Close);
  fn("dup", Dup);
  fn("fdInfo", FdInfo);
  fn("peerHungUp", PeerHungUp);
  fn("moveProblem", MoveProblem);
  fn("atExit", AtExit);
  fn("isSocketPeer", IsSocketPeer);
  fn("handleCount", HandleCount);
  fn("openCount", OpenCount);
  fn("stats", Stats);
  fn("setBlocking", Nothing);
  fn("shutdownWrite", Nothing);
  fn("setBufferSizes", SetBufferSizes);
  fn("sendPacket", SendPacket);
  fn("writePending", WritePending);
  fn("recvPackets", RecvPackets);
  fn("testRawWrite", TestRawWrite);
  fn("testHandleValue", TestHandleValue);
  exports.Set("ID_BASE", Napi::Number::New(env, kIdBase));
  exports.Set("AGAIN", Napi::Number::New(env, kAgain));
  exports.Set("GONE", Napi::Number::New(env, kGone));
  exports.Set("TOO_BIG", Napi::Number::New(env, kTooBig));
  exports.Set("MAX_PAYLOAD", Napi::Number::New(env, static_cast<double>(kMaxPayload)));
}

}  // namespace eicch
