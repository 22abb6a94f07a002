// Windows groundwork for the win32 transport (issue 13): overlapped message-mode named pipe
// pairs and an I/O completion port watcher thread that tells JS when an end became readable or
// writable. Exported under `addon.iocp` and run by test/windows/smoke.mjs; the win32 transport
// itself does not use a completion port (a moved pipe end cannot join another process's port:
// see win.h and docs/windows.md).
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
#pragma once
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

// Shared by pipe.cc (state, completions, the watcher) and pipe-ends.cc (the exported calls).
const char* ErrorName(DWORD err);
[[noreturn]] void ThrowWin(Napi::Env env, DWORD err, const char* call);
bool IsGoneError(DWORD err);
State* GetState(Napi::Env env);
End* GetEnd(const Napi::CallbackInfo& info, State* s);
void UpdateRef(State* s);
void FreeIfDone(State* s, End* e);
bool PostRead(End* e);
void CloseEnd(State* s, End* e);
Napi::Value Init(const Napi::CallbackInfo& info);
Napi::Value Shutdown(const Napi::CallbackInfo& info);

}  // namespace eicwin
