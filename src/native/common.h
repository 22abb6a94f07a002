// Shared by the addon's translation units. Every function here runs on the JS thread of the
// environment it is given.
#pragma once

#include <napi.h>
#include <uv.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <unordered_map>

// Adds landlockAbi and landlockRestrict to `exports` (src/native/landlock.cc).
void InitLandlock(Napi::Env env, Napi::Object exports);

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
  uint8_t* scratch = nullptr;
  size_t scratchSize = 0;
};

EnvState* State(napi_env env);
void Retain(EnvState* s);
void Release(EnvState* s);
// A PollHandle's uv close callback ran and it was freed.
void PollHandleFreed(EnvState* s);

// channel.cc: detaches the handle from its Poller, removes it from `pollers` and uv_closes it
// (which also drops its epoll registration, so call it while the fd is still open).
void ClosePollHandle(PollHandle* h);

// What the addon knows about where a registered descriptor came from, so that closing it can
// skip checks (CloseQuietly): an AF_UNIX socket it made itself (socketpair, connect, accept,
// listen, or a dup of one), or a memfd it made (memfdCreate). Anything received or adopted is
// kUnknown.
enum class FdOrigin : uint32_t { kUnknown = 0, kUnixSocket = 1, kSharedMemory = 2 };

// The descriptor table. An fd belongs to at most one environment; registering it takes it over
// (a stale entry for a reused number is simply replaced).
void RegisterFd(napi_env env, int fd, FdOrigin origin = FdOrigin::kUnknown);
void RegisterFds(napi_env env, const int* fds, int count, FdOrigin origin = FdOrigin::kUnknown);
// The origin recorded for `fd` if this environment owns it, else kUnknown.
FdOrigin OriginOf(napi_env env, int fd);
// Removes `fd` from whichever table holds it and closes this environment's poller on it: libuv
// must drop the epoll registration while the number still names the same file.
void UnregisterFd(napi_env env, int fd);
// Closes a descriptor this environment owns: unregisters it, then CloseQuietly. EBADF when the
// table does not hold it for this environment. Returns 0 or an errno.
int CloseFd(napi_env env, int fd);
// closer.cc. close(2) that never blocks the calling thread: a descriptor whose close cannot wait
// (AF_UNIX socket with nothing queued, pipe, shared memory, anonymous inode) is closed here, any
// other one (TCP with SO_LINGER, FUSE/NFS file, tty, device...) is handed to the process-wide
// closer thread and keeps its number until it is really closed. EINTR counts as closed (Linux
// always releases the number). Returns 0 or the errno of a close done here. Any thread.
int CloseQuietly(int fd, FdOrigin origin = FdOrigin::kUnknown);
// Descriptors handed to the closer thread and not yet closed. Any thread.
size_t PendingCloses();
// "EPERM" for EPERM and so on for every Linux errno; nullptr for an unknown value.
const char* ErrnoName(int err);
size_t OpenCount(napi_env env);

// Per-environment reusable buffer of at least `bytes` bytes (contents undefined).
uint8_t* Scratch(napi_env env, size_t bytes);

// Room for every control message a Unix socket can add to a packet, so that none of them can
// truncate the SCM_RIGHTS: SCM_CREDENTIALS (SO_PASSCRED), SCM_SECURITY (SO_PASSSEC; the peer's
// security label, allowed up to 4 KiB), SCM_RIGHTS (253 descriptors at most) and SCM_PIDFD
// (SO_PASSPIDFD, Linux 6.5+). The kernel writes them in that order (__scm_recv_common), each
// taking space from what is left, so a buffer sized for the rights alone lost descriptors as soon
// as the socket had SO_PASSCRED set.
constexpr size_t kSecurityLabelRoom = 4096;
constexpr size_t kControlBytes = CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(kSecurityLabelRoom) +
                                 CMSG_SPACE(sizeof(int) * kMaxFdsPerPacket) + CMSG_SPACE(sizeof(int));
union ControlBuffer {
  struct cmsghdr align;
  char bytes[kControlBytes];
};

void InitChannel(Napi::Env env, Napi::Object exports);
void InitCloser(Napi::Env env, Napi::Object exports);
void InitShm(Napi::Env env, Napi::Object exports);

}  // namespace eic
