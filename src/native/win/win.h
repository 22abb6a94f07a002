// The win32 transport's native half (issue 13): shared declarations of src/native/win/*.cc.
//
// Model: every kernel object the typed layer holds is named by a small integer, as descriptors
// are on POSIX, so the typed layer above the seam is the same on every system:
// - ids >= kIdBase name the entries of this environment's table: message-mode named pipe ends
//   (the channel "sockets") and listening pipe instances (the one-shot server, IpcServer);
// - ids below kIdBase are the C runtime descriptors of node.exe itself (what fs.openSync
//   returns), reached through libuv's exports (uv_get_osfhandle / uv_open_osfhandle /
//   uv_fs_close) because node.exe links its C runtime statically: the addon's own CRT has
//   another descriptor table. IpcFileHandle therefore hands the application a descriptor
//   that works with fs.readSync and friends.
//
// Readiness: no completion port. Every read, write and ConnectNamedPipe has its own manual-reset
// event; a watched operation is waited for with RegisterWaitForSingleObject (a thread-pool thread
// calls the thread-safe function), and blocking waits (recvSync) wait on the events directly.
// Why not a port: a port is bound to the file object, and a pipe end that moves to another
// process cannot join that process's port (docs/windows.md, "Facts found").
//
// Thread rules: the JS thread of the environment owns State and every End. The thread-pool
// callbacks touch only their Wait record (immutable after registration) and the thread-safe
// function. Process-wide state (the parked handles, the open ends by pipe name) sits behind a
// critical section.
#pragma once
#ifndef _WIN32
#error "src/native/win/ is built for Windows only (mingw-w64 or MSVC)"
#endif

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <napi.h>

#include <stdint.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace eicch {

// Results shared with the Transport interface (src/main/transport/types.ts).
constexpr int kAgain = -1;
constexpr int kGone = -2;
constexpr int kTooBig = -3;

// Ids of table entries start here; smaller numbers are node.exe's C runtime descriptors.
constexpr int32_t kIdBase = 1 << 24;

// Every message starts with this header, written and checked by the addon (never by JS):
// u32 magic, u32 handle count, u32 sender process id, u32 mode; then the handles: a 16-byte
// token (mode bit 0 set: kept in this process's registry) or, with mode bit 2 (the proof), one
// u64 handle value of a duplicate of the sender's own pipe end (io.cc: the receiver takes the
// handles only from a process holding the other side of its pipe) followed by count u64 handle
// values (valid in the sender process, parked there for the receiver to take; the proof is not
// counted); with mode bit 1, a bitmap of
// (count + 7) / 8 bytes (bit i set: handle i is the section of a pool segment attached to the
// pipe end that is handle i - 1, see lease.cc); then the payload. The count includes attached
// sections, so it never exceeds kMaxHandles.
constexpr uint32_t kMagic = 0x31434945;  // "EIC1"
constexpr uint32_t kModeLocal = 1;     // the handles are in this process's registry, under a token
constexpr uint32_t kModeAttached = 2;  // an attachment bitmap follows the handles
constexpr uint32_t kModeProof = 4;     // remote handles: a proof value comes first (never with kModeLocal)
constexpr size_t kHeader = 16;
constexpr uint32_t kMaxHandles = 253;  // as SCM_RIGHTS on Linux
// The typed layer's largest packet (MAX_RECV_PACKET_BYTES, 1 MiB + 64 KiB) with the header and
// the most handles: a longer message is read to its end and dropped (PACKET_TRUNCATED).
constexpr size_t kMaxPayload = (1u << 20) + (64u << 10);
constexpr size_t kMaxMessage = kHeader + 8 * kMaxHandles + kMaxPayload;
constexpr DWORD kReadChunk = 64u << 10;
constexpr DWORD kPipeBuffer = 64u << 10;

// Readiness bits (the uv_poll bits of src/main/native.ts).
constexpr int kReadable = 1;
constexpr int kWritable = 2;

// Packet flags (src/main/native.ts).
constexpr int kTruncated = 1;
constexpr int kCtruncated = 2;

struct State;

// One RegisterWaitForSingleObject registration. Freed on the JS thread after UnregisterWaitEx
// (with INVALID_HANDLE_VALUE: waits for a running callback), never by the callback.
struct Wait {
  State* s;
  int32_t id;
  int bits;
  HANDLE wait = nullptr;
};

struct End {
  int32_t id = 0;
  HANDLE h = INVALID_HANDLE_VALUE;
  bool listener = false;  // a server instance waiting for its client (listen/accept)
  bool server = false;    // the server end of its pipe
  bool section = false;   // a shared memory section (shm.cc), not a pipe end
  uint64_t size = 0;      // section: its size
  std::wstring name;      // the pipe's name (registry.cc counts open ends by it)
  std::wstring pipePath;  // listener: the \\.\pipe\ path of its next instance
  // A pool segment's lease (lease.cc): the section of the segment's memory, owned by this end
  // (closed with it, duplicated with it, sent with it as an attached handle). Pipe ends only.
  HANDLE lease = nullptr;
  uint64_t leaseSize = 0;  // the section's exact length (from its header)

  // Reading: at most one ReadFile in flight, into rbuf at rfill. A message that does not fit
  // completes with STATUS_BUFFER_OVERFLOW and the rest is read by the next ReadFile. Over
  // kMaxMessage the rest is read over the same bytes and dropped (truncated).
  OVERLAPPED rov{};
  HANDLE rev = nullptr;
  bool rPending = false;
  std::vector<uint8_t> rbuf;
  size_t rfill = 0;
  bool rTruncated = false;
  // One whole message waits for recv; the next read is posted only when it was taken, so a
  // flooding peer fills its own pipe quota, never this process's memory.
  bool hasMsg = false;
  bool eof = false;
  DWORD rerr = 0;

  // Writing: at most one WriteFile in flight (wbuf owned until it completes); handles parked
  // for that message are closed here if it fails.
  OVERLAPPED wov{};
  HANDLE wev = nullptr;
  bool wPending = false;
  std::vector<uint8_t> wbuf;
  std::vector<HANDLE> wParked;  // parked in this process for a peer process to take
  std::string wToken;           // or kept in the registry under this token (a local peer)
  bool writeGone = false;
  // Never send handles by token from this end (pair(carrierOf): a carrier whose other end is
  // about to move to another process, where a token of this process's registry means nothing).
  bool remoteOnly = false;
  // Noted by moveProblem(id, via): the move under way sends this end to another process.
  bool movesOut = false;

  // Listener: the ConnectNamedPipe in flight (its event is rev).
  bool connected = false;

  // Watching (the Poller): the bits asked for and the registered waits.
  int watch = 0;
  int queued = 0;  // bits delivered from the JS thread and not yet called back
  Wait* rWait = nullptr;
  Wait* wWait = nullptr;
};

struct State {
  napi_env env = nullptr;
  // Set by atExit() from the environment's 'exit' event (before the typed layer's exit flush):
  // from then on a pipe end closed while handles parked through it are not taken yet is kept
  // open for the exit wait (registry.cc: ParkEndClosing, WaitParked).
  bool exiting = false;
  napi_threadsafe_function tsfn = nullptr;
  napi_ref callback = nullptr;  // cb(id, bits), set by init
  int32_t nextId = kIdBase;
  std::unordered_map<int32_t, End*> ends;
  int refs = 0;  // watches that keep the loop alive
  bool stopped = false;
};

// ends.cc
State* StateOf(const Napi::CallbackInfo& info);
End* GetEnd(State* s, Napi::Env env, const Napi::Value& v);
End* NewEnd(State* s, HANDLE h, bool server);
void CloseEnd(State* s, End* e);
[[noreturn]] void ThrowWin(Napi::Env env, DWORD err, const char* call);
std::string ErrorCode(DWORD err);
bool IsGone(DWORD err);
void PostRead(End* e);
bool Settle(End* e);  // takes finished operations' results; true when a read or write finished
bool ReadReady(End* e);
void RegisterEnds(Napi::Env env, Napi::Object exports, State* s);

// watch.cc
void Arm(State* s, End* e);
void Disarm(State* s, End* e);
// Unregisters every wait of the environment (waiting for a callback in flight) and refuses new
// ones: its teardown (module.cc's cleanup hook, and the thread-safe function's finalizer). JS thread.
void StopWatching(State* s);
void RegisterWatch(Napi::Env env, Napi::Object exports, State* s);

// A handle parked for a peer process to take (registry.cc): the pipe end its message was written
// to (nullptr once that end is closed and not kept), the environment that wrote it, and what the
// object is. The peer's DUPLICATE_CLOSE_SOURCE closes it here, and the system soon reuses the
// value for a new handle of ours (Wine hands out the lowest free slot): a value that still opens
// is taken all the same when it now names another object, which the fingerprint tells (a pipe
// end: the hash of its pipe's name and which end; a file: volume and file index; a section: its
// size). kind 0 (unknown): only a closed value counts as taken.
struct Parked {
  HANDLE h;
  HANDLE pipe;
  State* owner;
  int kind;
  uint64_t a, b;
};
// Its fingerprint, when it is parked: from is the end it duplicates (nullptr for a C runtime
// descriptor's file), section: an attached pool section.
Parked ParkedOf(HANDLE h, const End* from, bool section);

// The exit wait for parked handles (registry.cc: WaitParked). Handles parked here die with this
// process, and their message then arrives without them (MALFORMED), so an environment that ends
// (a worker, the program) and the process itself (process.exit() skips environment cleanup
// hooks: atexit) first wait until they are taken. The wait goes on while it sees progress
// (a parked handle taken, or, where the system reports it, a pipe's outbound data read) and
// drops the handles whose pipe's reader is gone; it ends after kExitStallMs without progress or
// kExitCapMs in all, so a receiver that is alive but never reads holds an exiting process
// kExitStallMs, and one that reads ever so slowly at most kExitCapMs.
constexpr unsigned long long kExitStallMs = 5000;
constexpr unsigned long long kExitCapMs = 30000;

// registry.cc (process-wide, locked)
void LocalPut(const std::string& token, std::vector<HANDLE> handles);
bool LocalTake(const std::string& token, std::vector<HANDLE>* out);
size_t LocalCount();
void OpenAdd(const std::wstring& name, bool server, int delta);
void ParkAdd(Parked p, HANDLE pipe, State* owner);
void ParkRemove(HANDLE h);
// A pipe end is being closed: true when the registry keeps its handle (its environment is
// exiting and handles parked through it are not taken yet; the caller must not close it).
bool ParkEndClosing(State* s, HANDLE pipe);
// Waits for the handles parked by `owner` (nullptr: every environment), see kExitStallMs.
// atProcessExit: called at DLL detach (other threads gone): never blocks on the lock.
void WaitParked(State* owner, bool atProcessExit);
bool PeerIsLocal(const std::wstring& name, bool server);

// io.cc
Napi::Value SendPacket(const Napi::CallbackInfo& info);
Napi::Value WritePending(const Napi::CallbackInfo& info);
Napi::Value RecvPackets(const Napi::CallbackInfo& info);
std::wstring PipeNameOf(HANDLE h);

// lease.cc (pool segments: a section attached to a pipe end)
bool LeaseDup(End* e, HANDLE* out);                     // a duplicate to send (false: GetLastError)
bool LeaseAttach(State* s, int32_t endId, HANDLE section);  // a received one; closes it when refused
void LeaseClose(End* e);
void RegisterLease(Napi::Env env, Napi::Object exports, State* s);

// server.cc
void RegisterServer(Napi::Env env, Napi::Object exports, State* s);

// lockdown.cc
void RegisterLockdown(Napi::Env env, Napi::Object exports);

// shm.cc
bool IsSection(HANDLE h, uint64_t* size);      // any section (NtQuerySection answers)
bool SectionLength(HANDLE h, uint64_t* length);  // one of ours: pagefile-backed, our header
void RegisterShm(Napi::Env env, Napi::Object exports, State* s);

// crt.cc: node.exe's C runtime descriptors through libuv's exports.
HANDLE CrtHandle(int fd);
int CrtOpen(HANDLE h);
int CrtClose(napi_env env, int fd);

}  // namespace eicch
