// Probes of Windows behaviour that the next steps of the win32 transport depend on, run by the
// smoke test so that each run under Wine (or on Windows) records what that system does.
// JS thread only; every probe owns its port and handles and leaves nothing in flight.
#ifndef _WIN32
#error "src/native/win/ is built for Windows only (mingw-w64 or MSVC)"
#endif

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <winternl.h>

#include <napi.h>

#include <stdint.h>
#include <stdio.h>

namespace eicwin {

namespace {

// Waits for the packet of `ov` on `port` for up to `ms`: true when it came.
bool PacketFor(HANDLE port, OVERLAPPED* ov, DWORD ms) {
  DWORD bytes;
  ULONG_PTR key;
  for (;;) {
    OVERLAPPED* got = nullptr;
    BOOL ok = GetQueuedCompletionStatus(port, &bytes, &key, &got, ms);
    if (got == ov) return true;
    if (!ok && got == nullptr) return false;  // timed out: no (more) packets
  }
}

// An operation that did not finish at once must finish before its OVERLAPPED goes away.
void Settle(HANDLE h, OVERLAPPED* ov, BOOL ok) {
  if (!ok && GetLastError() == ERROR_IO_PENDING) {
    CancelIoEx(h, ov);
    DWORD ignored;
    GetOverlappedResult(h, ov, &ignored, TRUE);
  }
}

}  // namespace

// probeSkipCompletionOnSuccess() -> { setModeOk, writeAtOnce, packetWithSkip,
// packetWithoutSkip }: whether SetFileCompletionNotificationModes(
// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) is accepted on a pipe end, and whether a write that
// completes at once then still queues a packet (it must not; the control end, without the
// mode, must). Tells whether writes completing inline can skip the watcher round trip.
Napi::Value ProbeSkipCompletionOnSuccess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  wchar_t name[96];
  swprintf(name, 96, L"\\\\.\\pipe\\eic-probe-%lu-%lu", GetCurrentProcessId(), GetTickCount());
  HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  HANDLE server = CreateNamedPipeW(
      name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_REJECT_REMOTE_CLIENTS, 1, 4096, 4096, 0,
      nullptr);
  HANDLE client = server == INVALID_HANDLE_VALUE
                      ? INVALID_HANDLE_VALUE
                      : CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                                    FILE_FLAG_OVERLAPPED, nullptr);
  Napi::Object o = Napi::Object::New(env);
  if (port == nullptr || client == INVALID_HANDLE_VALUE ||
      CreateIoCompletionPort(server, port, 1, 0) == nullptr ||
      CreateIoCompletionPort(client, port, 2, 0) == nullptr) {
    o.Set("error", Napi::Number::New(env, GetLastError()));
  } else {
    BOOL setOk = SetFileCompletionNotificationModes(client, FILE_SKIP_COMPLETION_PORT_ON_SUCCESS);
    o.Set("setModeOk", Napi::Boolean::New(env, setOk));
    char byte = 'x';
    OVERLAPPED w1{};
    BOOL ok1 = WriteFile(client, &byte, 1, nullptr, &w1);
    o.Set("writeAtOnce", Napi::Boolean::New(env, ok1));
    o.Set("packetWithSkip", Napi::Boolean::New(env, PacketFor(port, &w1, 200)));
    Settle(client, &w1, ok1);
    OVERLAPPED w2{};
    BOOL ok2 = WriteFile(server, &byte, 1, nullptr, &w2);
    o.Set("packetWithoutSkip", Napi::Boolean::New(env, ok2 && PacketFor(port, &w2, 200)));
    Settle(server, &w2, ok2);
  }
  if (client != INVALID_HANDLE_VALUE) CloseHandle(client);
  if (server != INVALID_HANDLE_VALUE) CloseHandle(server);
  if (port != nullptr) CloseHandle(port);
  return o;
}

// probeDuplicateAssociation() -> { dupOnSecondPort, dupOnSecondPortError, packetOnFirstPort,
// packetOnSecondPort, lowBitEventSignalled, lowBitPacket, replaceStatus,
// afterReplaceOnSecondPort }. A completion port is bound
// to the file object, and a duplicated handle (what DuplicateHandle into a peer process
// makes) shares it. This shows whether the duplicate of an end already associated with a port
// can join another port (the receiving process's), where the packets of an operation through
// the duplicate go, and whether NtSetInformationFile(FileReplaceCompletionInformation, no port)
// can undo an association first (Windows 8.1+), so that an end can move to another process;
// and whether an operation whose hEvent has its low bit set skips the port (event waits instead).
Napi::Value ProbeDuplicateAssociation(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  wchar_t name[96];
  swprintf(name, 96, L"\\\\.\\pipe\\eic-probe-dup-%lu-%lu", GetCurrentProcessId(), GetTickCount());
  HANDLE port1 = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  HANDLE port2 = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  HANDLE server = CreateNamedPipeW(
      name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_REJECT_REMOTE_CLIENTS, 1, 4096, 4096, 0,
      nullptr);
  HANDLE client = server == INVALID_HANDLE_VALUE
                      ? INVALID_HANDLE_VALUE
                      : CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                                    FILE_FLAG_OVERLAPPED, nullptr);
  HANDLE dup = nullptr;
  Napi::Object o = Napi::Object::New(env);
  if (port1 == nullptr || port2 == nullptr || client == INVALID_HANDLE_VALUE ||
      CreateIoCompletionPort(client, port1, 1, 0) == nullptr ||
      !DuplicateHandle(GetCurrentProcess(), client, GetCurrentProcess(), &dup, 0, FALSE,
                       DUPLICATE_SAME_ACCESS)) {
    o.Set("error", Napi::Number::New(env, GetLastError()));
  } else {
    bool joined = CreateIoCompletionPort(dup, port2, 2, 0) != nullptr;
    o.Set("dupOnSecondPort", Napi::Boolean::New(env, joined));
    o.Set("dupOnSecondPortError", Napi::Number::New(env, joined ? 0 : GetLastError()));
    char byte = 'x';
    OVERLAPPED w{};
    BOOL ok = WriteFile(dup, &byte, 1, nullptr, &w);
    o.Set("packetOnFirstPort", Napi::Boolean::New(env, (ok || GetLastError() == ERROR_IO_PENDING) &&
                                                           PacketFor(port1, &w, 200)));
    o.Set("packetOnSecondPort", Napi::Boolean::New(env, PacketFor(port2, &w, 50)));
    Settle(dup, &w, ok);
    // An OVERLAPPED whose hEvent has its low bit set queues no packet; the event is signalled.
    OVERLAPPED we{};
    HANDLE ev = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    if (ev != nullptr) {
      we.hEvent = reinterpret_cast<HANDLE>(reinterpret_cast<uintptr_t>(ev) | 1);
      BOOL okE = WriteFile(dup, &byte, 1, nullptr, &we);
      bool started = okE || GetLastError() == ERROR_IO_PENDING;
      o.Set("lowBitEventSignalled",
            Napi::Boolean::New(env, started && WaitForSingleObject(ev, 200) == WAIT_OBJECT_0));
      o.Set("lowBitPacket", Napi::Boolean::New(env, PacketFor(port1, &we, 100)));
      if (!okE && GetLastError() == ERROR_IO_PENDING) {
        CancelIoEx(dup, &we);
        WaitForSingleObject(ev, INFINITE);
      }
      CloseHandle(ev);
    }
    // FileReplaceCompletionInformation (61) with a null port removes the association.
    struct {
      HANDLE Port;
      PVOID Key;
    } none = {nullptr, nullptr};
    IO_STATUS_BLOCK iosb{};
    NTSTATUS st = NtSetInformationFile(dup, &iosb, &none, sizeof none,
                                       static_cast<FILE_INFORMATION_CLASS>(61));
    char hex[16];
    snprintf(hex, sizeof hex, "0x%08lx", static_cast<unsigned long>(st));
    o.Set("replaceStatus", Napi::String::New(env, hex));
    o.Set("afterReplaceOnSecondPort",
          Napi::Boolean::New(env, st == 0 && CreateIoCompletionPort(dup, port2, 2, 0) != nullptr));
  }
  if (dup != nullptr) CloseHandle(dup);
  if (client != INVALID_HANDLE_VALUE) CloseHandle(client);
  if (server != INVALID_HANDLE_VALUE) CloseHandle(server);
  if (port2 != nullptr) CloseHandle(port2);
  if (port1 != nullptr) CloseHandle(port1);
  return o;
}

void RegisterProbes(Napi::Env env, Napi::Object exports) {
  exports.Set("probeDuplicateAssociation",
              Napi::Function::New(env, ProbeDuplicateAssociation, "probeDuplicateAssociation"));
  exports.Set("probeSkipCompletionOnSuccess",
              Napi::Function::New(env, ProbeSkipCompletionOnSuccess, "probeSkipCompletionOnSuccess"));
}

}  // namespace eicwin
