// Shared by the addon's translation units. Every function here runs on the JS thread of the
// environment it is given.
//
// Platforms: everything declared here exists on Linux and macOS. Linux-only code lives in
// seqpacket.cc and landlock.cc (binding.gyp builds them on Linux only) and in #ifdef __linux__
// blocks elsewhere, each with a portable branch; `npm run check:macos` compiles the macOS set.
#pragma once

#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <unordered_map>
#include <vector>

#ifdef __linux__
// Adds landlockAbi and landlockRestrict to `exports` (src/native/landlock.cc, Linux only).
void InitLandlock(Napi::Env env, Napi::Object exports);
#endif

namespace eic {

// SCM_MAX_FD (include/net/scm.h): the most descriptors one sendmsg can carry.
constexpr int kMaxFdsPerPacket = 253;

// Throws an Error with code (errno name), errno (positive) and syscall.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall);
[[noreturn]] void ThrowTypeError(Napi::Env env, const char* message);
[[noreturn]] void ThrowRangeError(Napi::Env env, const char* message);
// Throws the JS exception pending on `env` after a raw napi_* call returned `status`.
[[noreturn]] void ThrowPending(Napi::Env env, napi_status status);

// Argument `i` as a descriptor (an integer >= 0), else TypeError.
int ArgFd(const Napi::CallbackInfo& info, size_t i);

struct PollHandle;  // channel.cc
struct StreamFd;    // stream.cc: the framing state of one stream-transport descriptor

// Per-environment state, the napi instance data. Freed when its last reference goes: the
// instance data finalizer, the async cleanup hook and every PollHandle not yet freed by libuv.
struct EnvState {
  uint32_t id = 0;
  uv_loop_t* loop = nullptr;
  int refs = 0;
  int liveHandles = 0;
  bool tornDown = false;
  napi_async_cleanup_hook_handle cleanupHook = nullptr;
  std::unordered_map<int, PollHandle*> pollers;  // open handles by fd; one per fd per loop
  // stream.cc: framing state by fd, only for descriptors that have some (a write rest, a partial
  // frame, a broken stream). Dropped by ForgetStream when the number stops naming that socket.
  std::unordered_map<int, StreamFd*> streams;
};

EnvState* State(napi_env env);
void Retain(EnvState* s);
void Release(EnvState* s);
// A PollHandle's uv close callback ran and it was freed.
void PollHandleFreed(EnvState* s);

// channel.cc. Whether the peer of a socket hung up: 1 yes, 0 no, or -errno from poll (-EBADF
// for a closed number). Linux also counts the peer's shutdown(SHUT_WR) (POLLRDHUP); macOS
// reports POLLHUP once the peer can send no more.
int PollHangUp(int fd);
// channel.cc. Type, mode and size of `fd` without waiting on another process where the system
// allows it: Linux statx(AT_STATX_DONT_SYNC) (fstat before Linux 4.11); macOS fstat, which may ask
// a network file system's server. Returns 0 or an errno; kStatNoWaitCall names the system call
// for error messages ("statx" or "fstat"). With `closeCannotWait`, also says whether closing the
// descriptor can never wait (FileCloseCannotWait from the same answer: no second system call).
int StatNoWait(int fd, mode_t* mode, int64_t* size, bool* closeCannotWait = nullptr);
extern const char* const kStatNoWaitCall;

// channel.cc: detaches the handle from its Poller, removes it from `pollers` and uv_closes it
// (which also drops its epoll registration, so call it while the fd is still open).
void ClosePollHandle(PollHandle* h);

// What the addon knows about where a registered descriptor came from, so that closing it can
// skip checks (CloseQuietly): an AF_UNIX socket it made itself (socketpair, connect, accept,
// listen, or a dup of one), or a memfd it made (memfdCreate). Anything received or adopted is
// kUnknown, until fdInfo (channel.cc) finds a kind whose close can never wait (FileCloseCannotWait:
// a pipe, a regular file on a block device, a memfd, /dev/null...): then kCloseCannotWait, so that
// closing it needs no second statx. Those properties belong to the open file (its inode), which a
// descriptor keeps until it is closed, so the answer cannot go stale while the table holds the
// number; sockets never get it (what their queues hold changes). Like every origin, it trusts the
// table: a number closed behind the addon's back (the application's fs.closeSync(handle.fd), a
// misuse) and reused meanwhile is closed by number anyway (the table cannot tell), and with this
// origin without the check, on the calling thread.
enum class FdOrigin : uint32_t { kUnknown = 0, kUnixSocket = 1, kSharedMemory = 2, kCloseCannotWait = 3 };

// The descriptor table. An fd belongs to at most one environment; registering it takes it over
// (a stale entry for a reused number is simply replaced).
void RegisterFd(napi_env env, int fd, FdOrigin origin = FdOrigin::kUnknown);
void RegisterFds(napi_env env, const int* fds, int count, FdOrigin origin = FdOrigin::kUnknown);
// The origin recorded for `fd` if this environment owns it, else kUnknown.
FdOrigin OriginOf(napi_env env, int fd);
// Records kCloseCannotWait for `fd` if this environment owns it with origin kUnknown (fdInfo found
// a kind whose close never waits); does nothing otherwise.
void NoteCloseCannotWait(napi_env env, int fd);
// Removes `fd` from whichever table holds it and closes this environment's poller on it: libuv
// must drop the epoll registration while the number still names the same file.
void UnregisterFd(napi_env env, int fd);
// Closes a descriptor this environment owns: unregisters it, then CloseQuietly. EBADF when the
// table does not hold it for this environment. Returns 0 or an errno.
int CloseFd(napi_env env, int fd);
// closer.cc. close(2) that never blocks the calling thread: a descriptor whose close cannot wait
// (AF_UNIX socket with nothing queued, pipe, shared memory, anonymous inode) is closed here, any
// other one (TCP with SO_LINGER, FUSE/NFS file, tty, device...) is handed to the process-wide
// closer thread and keeps its number until it is really closed. EINTR counts as closed (Linux and
// macOS both release the number before the file's own close can be interrupted). Returns 0 or
// the errno of a close done here. Any thread.
int CloseQuietly(int fd, FdOrigin origin = FdOrigin::kUnknown);
// closer.cc. Whether closing a descriptor that is not a socket can never wait, from its type and
// device numbers (Linux: statx's stx_dev_major / stx_rdev_major; macOS: unused): anonymous inodes,
// pipes, the memory devices, regular files and directories on a block device, shared memory.
// Answers for as long as the descriptor stays open. False for a socket (ask at close time).
bool FileCloseCannotWait(int fd, mode_t mode, unsigned devMajor, unsigned rdevMajor);
// Descriptors handed to the closer thread and not yet closed. Any thread.
size_t PendingCloses();
// closer.cc. "EPERM" for EPERM and so on for every errno of the system it was built for (a
// Linux table, a macOS table); nullptr for an unknown value (ThrowErrno then says "E<number>").
const char* ErrnoName(int err);
size_t OpenCount(napi_env env);

#ifdef __linux__
// Room for every control message a Unix socket can add to a packet, so that none of them can
// truncate the SCM_RIGHTS: SCM_CREDENTIALS (SO_PASSCRED), SCM_SECURITY (SO_PASSSEC; the peer's
// security label, allowed up to 4 KiB), SCM_RIGHTS (253 descriptors at most) and SCM_PIDFD
// (SO_PASSPIDFD, Linux 6.5+). The kernel writes them in that order (__scm_recv_common), each
// taking space from what is left, so a buffer sized for the rights alone lost descriptors as soon
// as the socket had SO_PASSCRED set.
constexpr size_t kSecurityLabelRoom = 4096;
constexpr size_t kControlBytes = CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(kSecurityLabelRoom) +
                                 CMSG_SPACE(sizeof(int) * kMaxFdsPerPacket) + CMSG_SPACE(sizeof(int));
#else
// macOS: no socket option adds a control message to AF_UNIX reads (LOCAL_PEERCRED is a
// getsockopt), so SCM_RIGHTS is the only one.
constexpr size_t kControlBytes = CMSG_SPACE(sizeof(int) * kMaxFdsPerPacket);
#endif
union ControlBuffer {
  struct cmsghdr align;
  char bytes[kControlBytes];
};

// sockets.cc. FD_CLOEXEC / O_NONBLOCK by fcntl, where the atomic flags are missing: 0 or an errno.
int SetCloexec(int fd);
int SetNonblocking(int fd);

// sockets.cc. Adds the one-shot server's functions for AF_UNIX sockets of `type` (SOCK_SEQPACKET,
// SOCK_STREAM) to `target`: listen(path) (bound, backlog 1, non-blocking), accept(fd) (the next
// connection, non-blocking, or -EAGAIN), connect(path) (blocking connect, then non-blocking) and
// peerCredentials(fd) (SO_PEERCRED; macOS getpeereid + LOCAL_PEERPID). Every descriptor they make
// is close-on-exec and registered; errors throw, errno-named.
void InitUnixServer(Napi::Env env, Napi::Object target, int type);

void InitChannel(Napi::Env env, Napi::Object exports);
#ifdef __linux__
// seqpacket.cc (Linux only): socketpair, sendPacket, recvPackets, recvInto, peekFd, listen,
// accept, connect, peerCredentials, neutralizeSocket.
void InitSeqpacket(Napi::Env env, Napi::Object exports);
#endif
void InitCloser(Napi::Env env, Napi::Object exports);
void InitShm(Napi::Env env, Napi::Object exports);
void InitStream(Napi::Env env, Napi::Object exports);
// sockets.cc: the stream transport's socketpair, listen, accept, connect, peerCredentials.
void InitStreamSockets(Napi::Env env, Napi::Object stream);
// shm.cc: the stream transport's shmCreate, readAll, accessMode.
void InitStreamShm(Napi::Env env, Napi::Object stream);

// stream.cc. Drops the framing state kept for `fd` (a write rest, a partial frame read, whose
// descriptors are closed): UnregisterFd calls it (the number is being closed or given away), and
// RegisterFds (the number was reused). Cheap when the environment keeps no stream state.
void ForgetStream(EnvState* s, int fd);
// stream.cc. Drops every framing state of the environment (teardown, final Release).
void FreeStreams(EnvState* s);

// ---- helpers shared by the native sources (JS thread)

inline size_t Align8(size_t n) { return (n + 7) & ~size_t{7}; }

// Number.MAX_SAFE_INTEGER.
constexpr double kMaxSafeInteger = 9007199254740991.0;
// The most bytes mapFd copies into one ArrayBuffer (copy mode): Node 20's largest typed array
// (buffer.constants.MAX_LENGTH) and far beyond any sane message. V8 aborts the process when
// ArrayBuffer::New cannot allocate (there is no failing variant in Node-API), so a length is
// checked against this first, and large copies are allocated by `new ArrayBuffer()`, which
// throws a RangeError instead.
constexpr int64_t kMaxCopyBytes = int64_t{1} << 32;
// Copies at least this large go through `new ArrayBuffer()` (a JS call, ~1 us); smaller ones
// through napi_create_arraybuffer, whose failure is as unlikely as any small allocation.
constexpr size_t kJsAllocationBytes = size_t{1} << 20;
[[noreturn]] inline void ThrowTooLarge(napi_env env, int64_t length) {
  std::string message = "shared memory of " + std::to_string(length) + " bytes is larger than this runtime can hold";
  ThrowRangeError(env, message.c_str());
}

// A new ArrayBuffer of `length` bytes (zero-filled) whose allocation failure is a RangeError, not
// an abort. Runs on the JS thread.
inline napi_value NewArrayBuffer(napi_env env, size_t length, void** data) {
  napi_value ab;
  if (length < kJsAllocationBytes) {
    napi_status status = napi_create_arraybuffer(env, length, data, &ab);
    if (status != napi_ok) ThrowPending(env, status);
    return ab;
  }
  napi_value global, ctor, arg;
  if (napi_get_global(env, &global) != napi_ok || napi_get_named_property(env, global, "ArrayBuffer", &ctor) != napi_ok ||
      napi_create_double(env, static_cast<double>(length), &arg) != napi_ok) {
    ThrowPending(env, napi_generic_failure);
  }
  if (napi_new_instance(env, ctor, 1, &arg, &ab) != napi_ok) {
    bool pending = false;
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
    ThrowTooLarge(env, static_cast<int64_t>(length));
  }
  size_t got = 0;
  if (napi_get_arraybuffer_info(env, ab, data, &got) != napi_ok || got != length) ThrowTooLarge(env, static_cast<int64_t>(length));
  return ab;
}

inline int64_t ArgSize(const Napi::CallbackInfo& info, size_t i, const char* message) {
  double d;
  if (napi_get_value_double(info.Env(), info[i], &d) != napi_ok) ThrowTypeError(info.Env(), message);
  if (!(d >= 0 && d <= kMaxSafeInteger) || d != static_cast<double>(static_cast<int64_t>(d))) {
    ThrowRangeError(info.Env(), message);
  }
  return static_cast<int64_t>(d);
}

// Closes the descriptor on scope exit unless released; used from creation to hand-over.
class FdGuard {
 public:
  FdGuard(napi_env env, int fd) : env_(env), fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) CloseFd(env_, fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  napi_env env_;
  int fd_;
};

inline int ArgInt(const Napi::CallbackInfo& info, size_t i, int min, int max, const char* message) {
  double d;
  if (napi_get_value_double(info.Env(), info[i], &d) != napi_ok) ThrowTypeError(info.Env(), message);
  if (!(d >= min && d <= max) || d != static_cast<double>(static_cast<int>(d))) ThrowRangeError(info.Env(), message);
  return static_cast<int>(d);
}

inline std::string ArgPath(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) ThrowTypeError(info.Env(), "path must be a string");
  std::string path = info[i].As<Napi::String>().Utf8Value();
  if (path.empty() || path.find('\0') != std::string::npos) {
    ThrowTypeError(info.Env(), "path must be a non-empty string without NUL characters");
  }
  return path;
}

// Fills `addr`; returns its length, or 0 when the path does not fit in sun_path.
inline socklen_t UnixAddress(const std::string& path, struct sockaddr_un* addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof addr->sun_path) return 0;
  memcpy(addr->sun_path, path.data(), path.size());
  return static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size() + 1);
}

inline void GetInt32Array(napi_env env, napi_value value, int32_t** data, size_t* length, const char* message) {
  napi_typedarray_type type;
  void* p = nullptr;
  if (napi_get_typedarray_info(env, value, &type, length, &p, nullptr, nullptr) != napi_ok || type != napi_int32_array) {
    ThrowTypeError(env, message);
  }
  *data = static_cast<int32_t*>(p);
}

// The bytes of a Uint8Array argument, or a TypeError with `message`.
inline uint8_t* GetUint8Array(napi_env env, napi_value value, size_t* length, const char* message) {
  napi_typedarray_type type;
  void* p = nullptr;
  if (napi_get_typedarray_info(env, value, &type, length, &p, nullptr, nullptr) != napi_ok || type != napi_uint8_array) {
    ThrowTypeError(env, message);
  }
  return static_cast<uint8_t*>(p);
}

inline size_t ElementSize(napi_typedarray_type type) {
  switch (type) {
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      return 8;
    default:
      return 1;
  }
}

#if defined(__linux__) && !defined(SCM_PIDFD)
#define SCM_PIDFD 0x04
#endif

// Runs right after a recvmsg that had a control buffer. Every descriptor the kernel installed, of
// every control message type, is either handed to `keep` (SCM_RIGHTS, in order; it returns false
// to have the descriptor closed instead) or closed: SCM_PIDFD (the sender's pidfd, installed on
// every read, peeks included, while the socket has SO_PASSPIDFD, which whoever else holds the
// socket can set at any time). SCM_CREDENTIALS and SCM_SECURITY carry no descriptor, and no other
// SOL_SOCKET type does. Unowned descriptors are closed with CloseQuietly: a peer chose them.
// Returns the number of SCM_RIGHTS descriptors seen.
template <typename Keep>
int ForEachControlFd(struct msghdr* msg, Keep keep) {
  int rights = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_len < CMSG_LEN(0)) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int got;
        memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        rights++;
        if (got >= 0 && !keep(got)) CloseQuietly(got);
      }
#ifdef __linux__
    } else if (c->cmsg_type == SCM_PIDFD && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      // A negative value is pidfd_prepare's error: nothing was installed.
      int pidfd;
      memcpy(&pidfd, CMSG_DATA(c), sizeof pidfd);
      if (pidfd >= 0) close(pidfd);  // a pidfd's close never blocks
#endif
    }
  }
  return rights;
}

constexpr uint32_t kStackIov = 32;

// Runs on the JS thread. The iovecs of a JS array of typed arrays; the memory they point to
// stays valid for the duration of the native call that builds them.
class Iovecs {
 public:
  Iovecs(napi_env env, napi_value parts, bool uint8Only, const char* message) {
    bool isArray = false;
    if (napi_is_array(env, parts, &isArray) != napi_ok || !isArray) ThrowTypeError(env, message);
    if (napi_get_array_length(env, parts, &count_) != napi_ok) ThrowPending(env, napi_generic_failure);
    if (count_ > IOV_MAX) ThrowRangeError(env, message);
    if (count_ > kStackIov) {
      heap_.resize(count_);
      iov_ = heap_.data();
    }
    for (uint32_t i = 0; i < count_; i++) {
      napi_value part;
      napi_typedarray_type type;
      size_t length;
      void* data;
      if (napi_get_element(env, parts, i, &part) != napi_ok ||
          napi_get_typedarray_info(env, part, &type, &length, &data, nullptr, nullptr) != napi_ok ||
          (uint8Only && type != napi_uint8_array)) {
        ThrowTypeError(env, message);
      }
      iov_[i].iov_base = data;
      iov_[i].iov_len = length * ElementSize(type);
    }
  }
  struct iovec* data() { return iov_; }
  uint32_t count() const { return count_; }

 private:
  struct iovec stack_[kStackIov];
  std::vector<struct iovec> heap_;
  struct iovec* iov_ = stack_;
  uint32_t count_ = 0;
};

// recvmsg(fd, msg, flags) that retries EINTR, and ECONNRESET once: the one-shot socket error a
// peer leaves when it closes with data unread (Linux unix_release_sock); what it sent before is
// still queued, then end of file follows. Returns the byte count or -errno (EWOULDBLOCK as
// -EAGAIN). msg_controllen and msg_flags are reset before each try.
inline ssize_t RecvmsgRetrying(int fd, struct msghdr* msg, int flags) {
  const auto controllen = msg->msg_controllen;
  bool retried = false;
  for (;;) {
    msg->msg_controllen = controllen;
    msg->msg_flags = 0;
    ssize_t r = recvmsg(fd, msg, flags);
    if (r >= 0) return r;
    int err = errno;
    if (err == EINTR) continue;
    if (err == ECONNRESET && !retried) {
      retried = true;
      continue;
    }
    return err == EWOULDBLOCK ? -EAGAIN : -err;
  }
}

// sendPacket's `fds` argument, for every transport: null/undefined (none), one integer >= 0 (one
// descriptor: no array to read element by element, the common case of a message with a handle),
// or an array of at most 253 integers >= 0 (else TypeError/RangeError), copied to `out`
// (kMaxFdsPerPacket entries). Returns how many.
inline uint32_t ArgFdList(napi_env env, napi_value list, int* out) {
  napi_valuetype type;
  napi_typeof(env, list, &type);
  if (type == napi_null || type == napi_undefined) return 0;
  if (type == napi_number) {
    double d;
    napi_get_value_double(env, list, &d);
    if (!(d >= 0 && d <= INT_MAX) || d != static_cast<double>(static_cast<int>(d))) ThrowTypeError(env, "fds must hold integers >= 0");
    out[0] = static_cast<int>(d);
    return 1;
  }
  bool isArray = false;
  if (napi_is_array(env, list, &isArray) != napi_ok || !isArray) ThrowTypeError(env, "fds must be an array or null");
  uint32_t count = 0;
  napi_get_array_length(env, list, &count);
  if (count > static_cast<uint32_t>(kMaxFdsPerPacket)) ThrowRangeError(env, "a packet carries at most 253 descriptors");
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    double d;
    if (napi_get_element(env, list, i, &v) != napi_ok || napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d <= INT_MAX) ||
        d != static_cast<double>(static_cast<int>(d))) {
      ThrowTypeError(env, "fds must hold integers >= 0");
    }
    out[i] = static_cast<int>(d);
  }
  return count;
}

// Gives `msg` one SCM_RIGHTS control message in `ctrl` carrying fds[0, count); nothing for 0.
inline void SetRights(struct msghdr* msg, ControlBuffer* ctrl, const int* fds, uint32_t count) {
  if (count == 0) return;
  memset(ctrl->bytes, 0, CMSG_SPACE(sizeof(int) * count));
  msg->msg_control = ctrl->bytes;
  msg->msg_controllen = CMSG_SPACE(sizeof(int) * count);
  struct cmsghdr* c = CMSG_FIRSTHDR(msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * count);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * count);
}

// The arguments every transport's recvPackets(fd, meta, fdsOut, maxPackets, maxPacketBytes,
// arena, arenaOffset, block?) shares, checked (TypeError/RangeError): see src/main/native.ts.
struct RecvArgs {
  int fd;
  int32_t* meta;
  int32_t* fdsOut;
  size_t fdsCapacity;
  int maxPackets;
  int maxPacketBytes;
  // Align8(maxPacketBytes): the room one packet takes.
  size_t slot;
  // Where packets land (the arena from arenaOffset), and the room from there on (>= slot).
  uint8_t* buf;
  size_t arenaBase;
  size_t budget;
  // Argument 7: the first read may wait (the file in blocking mode).
  bool block;
};

inline RecvArgs ParseRecvArgs(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  RecvArgs a = {};
  a.fd = ArgFd(info, 0);
  size_t metaLength;
  GetInt32Array(env, info[1], &a.meta, &metaLength, "meta must be an Int32Array");
  GetInt32Array(env, info[2], &a.fdsOut, &a.fdsCapacity, "fdsOut must be an Int32Array");
  a.maxPackets = ArgInt(info, 3, 1, 1 << 20, "maxPackets must be an integer from 1 to 2^20");
  a.maxPacketBytes = ArgInt(info, 4, 0, 1 << 30, "maxPacketBytes must be an integer from 0 to 2^30");
  if (metaLength < 2 + 4 * static_cast<size_t>(a.maxPackets)) ThrowRangeError(env, "meta must hold 2 + 4 * maxPackets entries");
  a.slot = Align8(static_cast<size_t>(a.maxPacketBytes));
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (info.Length() < 6 || napi_get_typedarray_info(env, info[5], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    ThrowTypeError(env, "arena must be a Uint8Array");
  }
  a.arenaBase = static_cast<size_t>(ArgInt(info, 6, 0, 1 << 30, "arenaOffset must be an integer from 0 to 2^30"));
  if (a.arenaBase % 8 != 0 || a.arenaBase > length || length - a.arenaBase < a.slot) {
    ThrowRangeError(env, "arenaOffset must be 8-aligned with room for one packet of maxPacketBytes after it");
  }
  a.buf = static_cast<uint8_t*>(data) + a.arenaBase;
  a.budget = length - a.arenaBase;
  a.block = info.Length() > 7 && info[7].IsBoolean() && info[7].As<Napi::Boolean>().Value();
  return a;
}

// seqpacket.cc (Linux): recvPackets without JavaScript arguments or exceptions, for a Poller that
// reads before it calls back. The packet count (> 0), 0 at end of file, -EAGAIN, another -errno of
// recvmsg, or kRecvFdsDoNotFit (the first packet carries more descriptors than fdsOut can hold).
constexpr int kRecvFdsDoNotFit = INT_MIN;
int RecvPacketsRaw(napi_env env, const RecvArgs& args);

// Flags of one received packet, PACKET_* in src/main/native.ts.
constexpr int kPacketTruncated = 1;   // MSG_TRUNC: longer than maxPacketBytes (seqpacket)
constexpr int kPacketCtruncated = 2;  // MSG_CTRUNC: the kernel dropped descriptors (seqpacket)
constexpr int kPacketDesync = 4;      // the stream went out of step; the bytes say how (stream)

// The output side of one recvPackets call, the same for every transport. Packets go back to
// back into the arena, each at an 8-aligned offset with the gap before the next zeroed; packet i
// gets meta[2 + 4i ..] = [offset in the arena, length, fdCount, flags], its descriptors go to
// fdsOut in order; Finish writes meta[0] = count and meta[1] = end of file. Invariant: at at()
// there is room for a packet of maxPacketBytes whenever count() == 0 or roomForAnother() holds
// (ParseRecvArgs checked it for the first; Add keeps offsets 8-aligned, so Align8 of a packet's
// end never passes the room a whole slot had).
class PacketBatch {
 public:
  explicit PacketBatch(const RecvArgs& a) : a_(a) {}
  int count() const { return n_; }
  bool full() const { return n_ >= a_.maxPackets; }
  // Whether one more packet may start: the first always; later ones while a whole slot fits, so
  // a batch stops before the arena's end rather than splitting a packet.
  bool roomForAnother() const { return n_ == 0 || off_ + a_.slot <= a_.budget; }
  // Where the next packet's bytes go.
  uint8_t* at() const { return a_.buf + off_; }
  // Free fdsOut entries, and where the next packet's descriptors go.
  size_t fdsRoom() const { return a_.fdsCapacity - fdsUsed_; }
  int32_t* fdsAt() const { return a_.fdsOut + fdsUsed_; }
  // Records the packet of `length` bytes (<= maxPacketBytes) at at() whose `fdCount` descriptors
  // are at fdsAt(), with PACKET_* `flags`.
  void Add(size_t length, int fdCount, int flags) {
    int32_t* m = a_.meta + 2 + 4 * n_;
    m[0] = static_cast<int32_t>(a_.arenaBase + off_);
    m[1] = static_cast<int32_t>(length);
    m[2] = fdCount;
    m[3] = flags;
    fdsUsed_ += static_cast<size_t>(fdCount);
    n_++;
    size_t end = off_ + length;
    off_ = Align8(end);
    memset(a_.buf + end, 0, off_ - end);
  }
  // Writes meta[0] and meta[1]; returns what recvPackets returns: the count when > 0, else 0 at
  // end of file or -EAGAIN.
  Napi::Value Finish(napi_env env, bool eof) const {
    a_.meta[0] = n_;
    a_.meta[1] = eof ? 1 : 0;
    return Napi::Number::New(env, n_ > 0 ? n_ : eof ? 0 : -EAGAIN);
  }

 private:
  const RecvArgs& a_;
  int n_ = 0;
  size_t off_ = 0;
  size_t fdsUsed_ = 0;
};

}  // namespace eic
