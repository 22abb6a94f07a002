// The IOCP groundwork's exported calls (see pipe.h): pairs, send, recv, close, info, stats.
#include "pipe.h"

namespace eicwin {

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
