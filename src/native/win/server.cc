// Named pipe servers (the one-shot server, IpcServer) and clients.
//
// listen(name): the first instance of `name` (FILE_FLAG_FIRST_PIPE_INSTANCE: fails if anyone
// holds the name, so nobody can squat it before us), message mode, local clients only, with a
// DACL that lets only the current user (the token's user SID) connect, and an overlapped
// ConnectNamedPipe in flight. The typed layer names servers with 128 random bits (server.ts).
// accept(id): when a client connected, the instance becomes a new end (the connection) and the
// listener makes the next instance of the name (the client's process id, from the system, is
// what peerCredentials reports; io.cc decides per message, by its proof, which process a
// message's handles may be taken from). connect(name): opens the
// pipe for overlapped I/O, message read mode, identification-only impersonation level.
#include "win.h"

#include <sddl.h>

#include <string.h>

namespace eicch {

namespace {

// "D:P(A;;GA;;;<user SID>)": only the current user, nothing inherited. Empty on failure.
std::wstring UserOnlySddl() {
  HANDLE token = nullptr;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) return std::wstring();
  union {
    TOKEN_USER user;
    uint8_t bytes[256];
  } u;
  DWORD len = 0;
  std::wstring out;
  if (GetTokenInformation(token, TokenUser, &u, sizeof u, &len)) {
    LPWSTR sid = nullptr;
    if (ConvertSidToStringSidW(u.user.User.Sid, &sid)) {
      out = std::wstring(L"D:P(A;;GA;;;") + sid + L")";
      LocalFree(sid);
    }
  }
  CloseHandle(token);
  return out;
}

HANDLE NewInstance(const std::wstring& name, bool first, DWORD* err) {
  std::wstring sddl = UserOnlySddl();
  PSECURITY_DESCRIPTOR sd = nullptr;
  if (sddl.empty() || !ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.c_str(), SDDL_REVISION_1, &sd, nullptr)) {
    *err = GetLastError() ? GetLastError() : ERROR_ACCESS_DENIED;
    return INVALID_HANDLE_VALUE;
  }
  SECURITY_ATTRIBUTES sa{sizeof sa, sd, FALSE};
  HANDLE h = CreateNamedPipeW(
      name.c_str(), PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, PIPE_UNLIMITED_INSTANCES,
      kPipeBuffer, kPipeBuffer, 0, &sa);
  *err = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
  LocalFree(sd);
  return h;
}

// Posts the ConnectNamedPipe of a listener's instance; its result is taken by Settle.
void PostConnect(End* e) {
  memset(&e->rov, 0, sizeof e->rov);
  e->rov.hEvent = e->rev;
  ResetEvent(e->rev);
  e->connected = false;
  if (ConnectNamedPipe(e->h, &e->rov)) {
    e->connected = true;
    SetEvent(e->rev);
    return;
  }
  DWORD err = GetLastError();
  if (err == ERROR_IO_PENDING) {
    e->rPending = true;
  } else if (err == ERROR_PIPE_CONNECTED) {
    e->connected = true;  // a client came between CreateNamedPipeW and here
    SetEvent(e->rev);
  } else {
    e->rerr = err;
    SetEvent(e->rev);
  }
}

std::wstring Wide(const std::string& s) {
  int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(n, L'\0');
  MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), &w[0], n);
  return w;
}

std::wstring PipeArg(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), "expected a pipe name (\\\\.\\pipe\\...)");
  std::wstring name = Wide(info[0].As<Napi::String>().Utf8Value());
  if (name.rfind(L"\\\\.\\pipe\\", 0) != 0 || name.size() > 256) {
    throw Napi::TypeError::New(info.Env(), "a pipe name starts with \\\\.\\pipe\\ and has at most 256 characters");
  }
  return name;
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  std::wstring name = PipeArg(info);
  DWORD err = 0;
  HANDLE h = NewInstance(name, true, &err);
  if (h == INVALID_HANDLE_VALUE) {
    if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY) {
      Napi::Error e = Napi::Error::New(env, "the pipe name is taken (someone else holds an instance of it)");
      e.Set("code", Napi::String::New(env, "EADDRINUSE"));
      throw e;
    }
    ThrowWin(env, err, "CreateNamedPipeW");
  }
  End* e = NewEnd(s, h, true);
  e->listener = true;
  e->pipePath = name;
  // Counted as a server end of the name: a client of this process that connects and sends at
  // once (before accept) must find its peer local, or its handles would go the remote way.
  e->name = PipeNameOf(h);
  OpenAdd(e->name, true, 1);
  PostConnect(e);
  return Napi::Number::New(env, e->id);
}

// accept(id) -> the connection's id, or AGAIN. A failed instance throws its error.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  End* l = GetEnd(s, env, info[0]);
  if (!l->listener) throw Napi::TypeError::New(env, "accept: not a listening pipe");
  Settle(l);
  if (l->rerr != 0) {
    DWORD err = l->rerr;
    l->rerr = 0;
    // The instance is spent (a client that came and went): make the next one and go on.
    DWORD err2 = 0;
    HANDLE next = NewInstance(l->pipePath, false, &err2);
    if (next == INVALID_HANDLE_VALUE) ThrowWin(env, err, "ConnectNamedPipe");
    CloseHandle(l->h);
    l->h = next;
    PostConnect(l);
    Arm(s, l);
    return Napi::Number::New(env, kAgain);
  }
  if (!l->connected) {
    Arm(s, l);
    return Napi::Number::New(env, kAgain);
  }
  DWORD err = 0;
  HANDLE next = NewInstance(l->pipePath, false, &err);
  HANDLE conn = l->h;
  End* c = NewEnd(s, conn, true);
  c->name = PipeNameOf(conn);
  OpenAdd(c->name, true, 1);
  l->h = next;
  l->connected = false;
  if (next == INVALID_HANDLE_VALUE) {
    l->rerr = err;  // the next accept throws it
    SetEvent(l->rev);
  } else {
    PostConnect(l);
  }
  Arm(s, l);
  return Napi::Number::New(env, c->id);
}

Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  std::wstring name = PipeArg(info);
  HANDLE h = INVALID_HANDLE_VALUE;
  DWORD err = 0;
  for (int attempt = 0; attempt < 10; attempt++) {
    h = CreateFileW(name.c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, nullptr);
    err = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
    if (err != ERROR_PIPE_BUSY) break;
    WaitNamedPipeW(name.c_str(), 50);  // between two instances of an IpcServer
  }
  if (err == ERROR_PIPE_BUSY || err == ERROR_SEM_TIMEOUT) {
    // Every instance is taken (a one-shot server that accepted already): nobody listens.
    Napi::Error e = Napi::Error::New(env, "every instance of the pipe is connected: nobody is listening there now");
    e.Set("code", Napi::String::New(env, "ECONNREFUSED"));
    throw e;
  }
  if (h == INVALID_HANDLE_VALUE) ThrowWin(env, err, "CreateFileW");
  DWORD mode = PIPE_READMODE_MESSAGE;
  if (!SetNamedPipeHandleState(h, &mode, nullptr, nullptr)) {
    DWORD err = GetLastError();
    CloseHandle(h);
    ThrowWin(env, err, "SetNamedPipeHandleState");
  }
  End* e = NewEnd(s, h, false);
  e->name = PipeNameOf(h);
  OpenAdd(e->name, false, 1);
  return Napi::Number::New(env, e->id);
}

// peerCredentials(id) -> { pid, uid: -1, gid: -1 }: the peer's process id as the system knows
// it for this pipe (the client of a server end, the server of a client end). No uid on Windows.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  End* e = GetEnd(StateOf(info), env, info[0]);
  ULONG pid = 0;
  BOOL ok = e->server ? GetNamedPipeClientProcessId(e->h, &pid) : GetNamedPipeServerProcessId(e->h, &pid);
  if (!ok) ThrowWin(env, GetLastError(), e->server ? "GetNamedPipeClientProcessId" : "GetNamedPipeServerProcessId");
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", static_cast<double>(pid));
  o.Set("uid", -1);
  o.Set("gid", -1);
  return o;
}

// pipeSecurity(id) -> the SDDL of a listener's DACL (for tests of the current-user-only rule).
Napi::Value PipeSecurity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  End* e = GetEnd(StateOf(info), env, info[0]);
  PSECURITY_DESCRIPTOR sd = nullptr;
  DWORD need = 0;
  GetKernelObjectSecurity(e->h, DACL_SECURITY_INFORMATION, nullptr, 0, &need);
  std::vector<uint8_t> buf(need ? need : 1);
  if (!GetKernelObjectSecurity(e->h, DACL_SECURITY_INFORMATION, buf.data(), need, &need)) {
    return Napi::String::New(env, "error " + std::to_string(GetLastError()));
  }
  sd = buf.data();
  LPWSTR text = nullptr;
  if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &text, nullptr)) {
    return Napi::String::New(env, "error " + std::to_string(GetLastError()));
  }
  std::wstring w(text);
  LocalFree(text);
  std::string out(w.begin(), w.end());
  Napi::Object o = Napi::Object::New(env);
  o.Set("dacl", out);
  std::wstring expected = UserOnlySddl();
  o.Set("expected", std::string(expected.begin(), expected.end()));
  return o;
}

}  // namespace

void RegisterServer(Napi::Env env, Napi::Object exports, State* s) {
  exports.Set("listen", Napi::Function::New(env, Listen, "listen", s));
  exports.Set("accept", Napi::Function::New(env, Accept, "accept", s));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect", s));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials", s));
  exports.Set("pipeSecurity", Napi::Function::New(env, PipeSecurity, "pipeSecurity", s));
}

}  // namespace eicch
