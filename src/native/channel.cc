// Descriptors on every POSIX system: close, dup, adopt, fdInfo, buffer sizes, hang-up checks,
// waitFds, blocking mode, and Poller (a libuv poll handle). The transports are elsewhere:
// seqpacket.cc (Linux SOCK_SEQPACKET) and stream.cc (AF_UNIX SOCK_STREAM, every POSIX system).
// Every function runs on the JS thread of the environment that calls it; Poller callbacks run on
// that thread's libuv loop. Linux-only calls (statx, SO_DOMAIN, F_GET_SEALS, /proc, POLLRDHUP)
// are inside #ifdef __linux__ with a portable branch beside them (macOS).
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/sysmacros.h>
#endif
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

namespace eic {

class Poller;

struct PollHandle {
  uv_poll_t poll;
  EnvState* state;
  Poller* owner;  // null once the Poller closed or was collected
  int fd;
};

int PollHangUp(int fd) {
#ifdef POLLRDHUP
  // Linux: POLLRDHUP reports the peer's shutdown(SHUT_WR) too, not only a full close.
  constexpr short kHangUp = POLLHUP | POLLRDHUP;
#else
  // macOS and the BSDs: poll reports POLLHUP once the peer can send no more (EV_EOF).
  constexpr short kHangUp = POLLHUP;
#endif
  struct pollfd p = {fd, kHangUp, 0};
  int r;
  do {
    r = poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (p.revents & POLLNVAL) return -EBADF;
  return (p.revents & kHangUp) != 0 ? 1 : 0;
}

#ifdef __linux__
const char* const kStatNoWaitCall = "statx";

// statx(AT_STATX_DONT_SYNC) of type, mode and size: answered from the inode cache, so a FUSE or
// NFS file never makes it wait for its server (fstat would send GETATTR to a FUSE server that may
// never answer). fstat only where statx does not exist (ENOSYS, Linux < 4.11).
int StatNoWait(int fd, mode_t* mode, int64_t* size, bool* closeCannotWait) {
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_MODE | STATX_SIZE, &stx) == 0) {
    *mode = stx.stx_mode;
    *size = static_cast<int64_t>(stx.stx_size);
    // The device numbers come with every statx answer (they are not in stx_mask's fields).
    if (closeCannotWait != nullptr) *closeCannotWait = FileCloseCannotWait(fd, stx.stx_mode, stx.stx_dev_major, stx.stx_rdev_major);
    return 0;
  }
  if (errno != ENOSYS) return errno;
  struct stat st;
  if (fstat(fd, &st) != 0) return errno;
  *mode = st.st_mode;
  *size = st.st_size;
  if (closeCannotWait != nullptr) *closeCannotWait = FileCloseCannotWait(fd, st.st_mode, major(st.st_dev), major(st.st_rdev));
  return 0;
}
#else
const char* const kStatNoWaitCall = "fstat";

// No statx elsewhere: fstat. Sockets, pipes and shared memory answer from kernel state; a vnode
// on a network file system may refresh its attributes from the server (documented limit).
int StatNoWait(int fd, mode_t* mode, int64_t* size, bool* closeCannotWait) {
  struct stat st;
  if (fstat(fd, &st) != 0) return errno;
  *mode = st.st_mode;
  *size = st.st_size;
  if (closeCannotWait != nullptr) *closeCannotWait = FileCloseCannotWait(fd, st.st_mode, 0, 0);
  return 0;
}
#endif

namespace {

Napi::Value Close(const Napi::CallbackInfo& info) {
  int err = CloseFd(info.Env(), ArgFd(info, 0));
  if (err != 0) ThrowErrno(info.Env(), err, "close");
  return info.Env().Undefined();
}

Napi::Value Dup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int source = ArgFd(info, 0);
  int fd = fcntl(source, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, errno, "fcntl");
  RegisterFd(env, fd, OriginOf(env, source));
  return Napi::Number::New(env, fd);
}

Napi::Value Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  if (fcntl(fd, F_GETFD) < 0) ThrowErrno(env, errno, "fcntl");
  RegisterFd(env, fd);
  return env.Undefined();
}

#ifdef __linux__
// F_GET_SEALS also works on plain tmpfs files, so the /proc link tells a memfd apart.
bool IsMemfd(int fd) {
  char link[64];
  char target[16];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target);
  if (n < 0) return true;
  return n >= 7 && memcmp(target, "/memfd:", 7) == 0;
}
#endif

// Kinds of fdInfo, in the order of FD_KINDS in src/main/native.ts (FdKind indexes the table).
const char* const kFdKinds[] = {"other", "socket", "seqpacket", "stream-socket", "dgram-socket", "memfd", "file", "pipe", "dir"};
enum class FdKind : int { kOther, kSocket, kSeqpacket, kStreamSocket, kDgramSocket, kMemfd, kFile, kPipe, kDir };
// Domains of fdInfo, in the order of FD_DOMAINS in src/main/native.ts.
const char* const kFdDomains[] = {"none", "unix", "other"};

// Runs on the JS thread. On Linux nothing here can wait on another process: StatNoWait (statx
// from the inode cache), getsockopt, getpeername and fcntl(F_GET_SEALS) answer from kernel state,
// and the /proc readlink of IsMemfd runs only for shared-memory files. On macOS StatNoWait is
// fstat, which for a file on a network file system may ask its server (see common.h).
// A descriptor this environment owns whose close can never wait is marked so in the descriptor
// table (FdOrigin::kCloseCannotWait): closing it later skips the closer's own statx.
Napi::Value FdInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  mode_t mode = 0;
  int64_t fileSize = 0;
  bool closeCannotWait = false;
  int err = StatNoWait(fd, &mode, &fileSize, &closeCannotWait);
  if (err != 0) ThrowErrno(env, err, kStatNoWaitCall);
  if (closeCannotWait) NoteCloseCannotWait(env, fd);
  FdKind kind = FdKind::kOther;
  double size = 0;
  int seals = 0;
  bool listening = false;
  bool connected = false;
  int domainCode = 0;
  if (S_ISSOCK(mode)) {
    int type = 0;
    socklen_t len = sizeof type;
    kind = FdKind::kSocket;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) {
#ifdef __linux__
      // macOS defines SOCK_SEQPACKET but has no such AF_UNIX socket: there it stays "socket".
      if (type == SOCK_SEQPACKET) kind = FdKind::kSeqpacket;
#endif
      if (type == SOCK_STREAM) kind = FdKind::kStreamSocket;
      else if (type == SOCK_DGRAM) kind = FdKind::kDgramSocket;
    }
    int accepting = 0;
    len = sizeof accepting;
    listening = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting != 0;
    // Connected: it has a peer, whose address also tells the domain (one system call for the
    // usual case). An AF_UNIX socket keeps its peer after that peer closes (the survivor then
    // reads end-of-file), so "connected" means "was connected, never unconnected".
    struct sockaddr_storage peer;
    socklen_t peerLength = sizeof peer;
    int domain = -1;
    if (!listening && getpeername(fd, reinterpret_cast<struct sockaddr*>(&peer), &peerLength) == 0 &&
        peerLength >= offsetof(struct sockaddr_storage, ss_family) + sizeof(sa_family_t)) {
      connected = true;
      domain = peer.ss_family;
    } else {
#ifdef SO_DOMAIN
      len = sizeof domain;
      if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) domain = -1;
#else
      // macOS has no SO_DOMAIN: the family of the socket's own address (an unbound AF_UNIX
      // socket still reports AF_UNIX with an empty path).
      struct sockaddr_storage self;
      socklen_t selfLength = sizeof self;
      if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&self), &selfLength) == 0 &&
          selfLength >= offsetof(struct sockaddr_storage, ss_family) + sizeof(sa_family_t)) {
        domain = self.ss_family;
      }
#endif
    }
    domainCode = domain == AF_UNIX ? 1 : 2;
  } else if (S_ISREG(mode)) {
    size = static_cast<double>(fileSize);
    kind = FdKind::kFile;
#ifdef __linux__
    int s = fcntl(fd, F_GET_SEALS);
    if (s >= 0 && IsMemfd(fd)) {
      kind = FdKind::kMemfd;
      seals = s;
    }
#endif
  } else if (S_ISFIFO(mode)) {
    kind = FdKind::kPipe;
  } else if (S_ISDIR(mode)) {
    kind = FdKind::kDir;
  }
  if (info.Length() > 1 && info[1].IsTypedArray()) {
    // The fast form (this runs for every descriptor a message carries): no object, and the
    // output array only for a regular file's size. Returns kind index in kFdKinds | listening << 4
    // | connected << 5 | domain index in kFdDomains << 6 | seals << 8 (F_SEAL_* bits: at most 6),
    // a small integer; writes size to out[1] for a regular file ("file", "memfd") only, where
    // `out` is a Float64Array of 2 or more elements. Reading the array's address
    // (napi_get_typedarray_info) costs about as much as the rest of the call, so the other kinds
    // (sockets, pipes, devices: what most messages carry) never touch it.
    if (S_ISREG(mode)) {
      Napi::Float64Array o = info[1].As<Napi::Float64Array>();
      if (o.ElementLength() < 2) throw Napi::TypeError::New(env, "fdInfo: the output array needs 2 elements");
      o[1] = size;
    }
    int packed = static_cast<int>(kind) | (listening ? 1 << 4 : 0) | (connected ? 1 << 5 : 0) | (domainCode << 6) | ((seals & 0x3f) << 8);
    return Napi::Number::New(env, packed);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("kind", Napi::String::New(env, kFdKinds[static_cast<int>(kind)]));
  out.Set("size", Napi::Number::New(env, size));
  out.Set("seals", Napi::Number::New(env, seals));
  out.Set("listening", Napi::Boolean::New(env, listening));
  out.Set("connected", Napi::Boolean::New(env, connected));
  out.Set("domain", Napi::String::New(env, kFdDomains[domainCode]));
  return out;
}

Napi::Value OpenCountFn(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(OpenCount(info.Env())));
}

Napi::Value SetBufferSizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  int snd = ArgInt(info, 1, 0, INT_MAX, "sndbuf must be an integer >= 0");
  int rcv = ArgInt(info, 2, 0, INT_MAX, "rcvbuf must be an integer >= 0");
  if (snd > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) != 0) ThrowErrno(env, errno, "setsockopt");
  if (rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) != 0) ThrowErrno(env, errno, "setsockopt");
  socklen_t len = sizeof snd;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, &len) != 0) ThrowErrno(env, errno, "getsockopt");
  len = sizeof rcv;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, &len) != 0) ThrowErrno(env, errno, "getsockopt");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, snd));
  out.Set(1u, Napi::Number::New(env, rcv));
  return out;
}

Napi::Value PeerHungUp(const Napi::CallbackInfo& info) {
  int r = PollHangUp(ArgFd(info, 0));
  if (r < 0) ThrowErrno(info.Env(), -r, "poll");
  return Napi::Boolean::New(info.Env(), r == 1);
}

// shutdownWrite(fd): shutdown(fd, SHUT_WR) of a socket this process only reads (an attached
// writer's socket): nobody, including this process through a descriptor a peer slipped it, can
// write to its peer any more, so a receiver cannot be kept from end of file by a descriptor it
// holds itself. ENOTCONN (the peer is gone already) is not an error.
Napi::Value ShutdownWrite(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  if (shutdown(fd, SHUT_WR) != 0 && errno != ENOTCONN) ThrowErrno(info.Env(), errno, "shutdown");
  return info.Env().Undefined();
}

// waitFds(readFds: number | Int32Array, writeFds: Int32Array | null, timeoutMs): blocks this
// thread in poll(2) until one of readFds is readable (or hung up): 1; until one of writeFds is
// writable: 2; timeout: 0 (-1 waits for ever); -errno on failure. Interruptions by signals continue with the time that is left.
Napi::Value WaitFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<struct pollfd> fds;
  size_t readCount = 1;
  if (info[0].IsTypedArray()) {
    Napi::Int32Array r = info[0].As<Napi::Int32Array>();
    readCount = r.ElementLength();
    for (size_t i = 0; i < readCount; i++) fds.push_back({r[i], POLLIN, 0});
  } else {
    fds.push_back({ArgFd(info, 0), POLLIN, 0});
  }
  if (info.Length() > 1 && info[1].IsTypedArray()) {
    Napi::Int32Array w = info[1].As<Napi::Int32Array>();
    for (size_t i = 0; i < w.ElementLength(); i++) fds.push_back({w[i], POLLOUT, 0});
  }
  double timeoutArg = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
  int64_t deadline = -1;
  struct timespec now;
  if (timeoutArg >= 0) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    deadline = static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000 + static_cast<int64_t>(timeoutArg);
  }
  int r;
  for (;;) {
    int wait = -1;
    if (deadline >= 0) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t left = deadline - (static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000);
      wait = left > 0 ? static_cast<int>(std::min<int64_t>(left, INT_MAX)) : 0;
    }
    r = poll(fds.data(), fds.size(), wait);
    if (r >= 0 || errno != EINTR) break;
  }
  int result = r < 0 ? -errno : 0;
  if (r > 0) {
    result = 2;
    for (size_t i = 0; i < readCount; i++) {
      if (fds[i].revents & POLLNVAL) {
        result = -EBADF;
        break;
      }
      if (fds[i].revents != 0) result = 1;
    }
  }
  return Napi::Number::New(env, result);
}

// setBlocking(fd, blocking): clears (true) or sets O_NONBLOCK on the descriptor's open file. The
// addon's own reads and writes all pass MSG_DONTWAIT; the mode only matters to a blocking
// recvPackets. uv_poll_init sets O_NONBLOCK again, so a caller that watches the socket with a
// Poller must set the mode again before its next blocking read.
Napi::Value SetBlocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  bool on = info[1].ToBoolean().Value();
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, on ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK)) != 0) ThrowErrno(env, errno, "fcntl");
  return env.Undefined();
}

void OnPoll(uv_poll_t* poll, int status, int events);
void OnPollClosed(uv_handle_t* handle);

#ifdef __linux__
// Linux only (read with seqpacket.cc's RecvPacketsRaw; macOS has no SOCK_SEQPACKET).
// The receive binding of this thread (bindRecv): the arena the JS side bump-allocates from
// (src/main/endpoint/receiver-reading.ts), the cell holding its bump offset, the meta and fdsOut
// arrays every read reports into and the largest packet. recvBound and a Poller that reads
// first (see Poller.ReadFirst) read with it, so that neither takes typed arrays per call and no
// two reads take the same bytes. One per thread (an environment runs on one thread); `env` tells
// whose it is.
struct RecvBinding {
  napi_env env = nullptr;
  napi_ref refs[4] = {nullptr, nullptr, nullptr, nullptr};
  uint8_t* data = nullptr;
  size_t length = 0;
  int32_t* offset = nullptr;  // offset[0]: where the next packet goes, 8-aligned
  int32_t* meta = nullptr;
  size_t metaLength = 0;
  int32_t* fdsOut = nullptr;
  size_t fdsCapacity = 0;
  int maxPacketBytes = 0;
};
thread_local RecvBinding tRecv;

// The most packets one bound read takes (meta must hold 2 + 4 * kMaxBoundPackets entries).
constexpr int kMaxBoundPackets = 256;

// bindRecv(arena: Uint8Array, offset: Int32Array, meta: Int32Array, fdsOut: Int32Array,
// maxPacketBytes): what recvBound and read-first Pollers read with from now on. offset[0] is
// where the next read goes in the arena (the caller moves it past what each read took); meta
// holds 2 + 4 * 256 entries, fdsOut at least 253. All are kept alive until the next call.
Napi::Value BindRecv(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  RecvBinding b;
  b.env = env;
  b.data = GetUint8Array(env, info[0], &b.length, "arena must be a Uint8Array");
  size_t offsetLength;
  GetInt32Array(env, info[1], &b.offset, &offsetLength, "offset must be an Int32Array");
  GetInt32Array(env, info[2], &b.meta, &b.metaLength, "meta must be an Int32Array");
  GetInt32Array(env, info[3], &b.fdsOut, &b.fdsCapacity, "fdsOut must be an Int32Array");
  b.maxPacketBytes = ArgInt(info, 4, 0, 1 << 30, "maxPacketBytes must be an integer from 0 to 2^30");
  if (offsetLength < 1 || b.metaLength < 2 + 4 * static_cast<size_t>(kMaxBoundPackets) || b.fdsCapacity < static_cast<size_t>(kMaxFdsPerPacket)) {
    ThrowRangeError(env, "offset must hold 1 entry, meta 2 + 4 * 256 and fdsOut 253");
  }
  for (int i = 0; i < 4; i++) {
    if (napi_create_reference(env, info[i], 1, &b.refs[i]) != napi_ok) {
      for (int j = 0; j < i; j++) napi_delete_reference(env, b.refs[j]);
      throw Napi::Error::New(env, "bindRecv: napi_create_reference failed");
    }
  }
  RecvBinding& old = tRecv;
  // A binding of another environment (one that ended on this thread) is not ours to release.
  if (old.env == env) {
    for (napi_ref r : old.refs) {
      if (r != nullptr) napi_delete_reference(env, r);
    }
  }
  old = b;
  return info.Env().Undefined();
}

// The arguments of a read of `fd` with this thread's binding; false when there is none for
// `env`, `maxPackets` is out of range, or the arena has no room for a packet at its offset.
bool BoundRecvArgs(napi_env env, int fd, int maxPackets, bool block, RecvArgs* args) {
  const RecvBinding& b = tRecv;
  if (b.env != env || b.data == nullptr || maxPackets <= 0 || maxPackets > kMaxBoundPackets) return false;
  const int32_t offset = b.offset[0];
  const size_t slot = Align8(static_cast<size_t>(b.maxPacketBytes));
  if (offset < 0 || offset % 8 != 0 || static_cast<size_t>(offset) > b.length || b.length - static_cast<size_t>(offset) < slot) return false;
  *args = {};
  args->fd = fd;
  args->meta = b.meta;
  args->fdsOut = b.fdsOut;
  args->fdsCapacity = b.fdsCapacity;
  args->maxPackets = maxPackets;
  args->maxPacketBytes = b.maxPacketBytes;
  args->slot = slot;
  args->buf = b.data + offset;
  args->arenaBase = static_cast<size_t>(offset);
  args->budget = b.length - static_cast<size_t>(offset);
  args->block = block;
  return true;
}

// recvBound(fd, maxPackets, block?): recvPackets(fd, meta, fdsOut, maxPackets, maxPacketBytes,
// arena, offset[0], block) with this thread's binding (bindRecv): the same results and errors.
// maxPackets from 1 to 256. Throws RangeError without a binding or without room at the offset.
Napi::Value RecvBound(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  int maxPackets = ArgInt(info, 1, 1, kMaxBoundPackets, "maxPackets must be an integer from 1 to 256");
  bool block = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  RecvArgs args;
  if (!BoundRecvArgs(env, fd, maxPackets, block, &args)) ThrowRangeError(env, "recvBound: no receive binding (bindRecv), or no room for a packet at its offset");
  int r = RecvPacketsRaw(env, args);
  if (r == kRecvFdsDoNotFit) ThrowRangeError(env, "the next packet carries more descriptors than fdsOut can hold");
  if (r < 0 && r != -EAGAIN) ThrowErrno(env, -r, "recvmsg");
  napi_value result;
  napi_create_int32(env, r, &result);
  return Napi::Value(env, result);
}
#endif  // __linux__

}  // namespace

// A uv_poll_t on the loop of the JS thread that created it. The JS object is weak: collecting
// it closes the handle. close(fd) through the addon and environment teardown close it too.
class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {
                           InstanceMethod<&Poller::Start>("start"),
                           InstanceMethod<&Poller::Stop>("stop"),
                           InstanceMethod<&Poller::Ref>("ref"),
                           InstanceMethod<&Poller::Unref>("unref"),
                           InstanceMethod<&Poller::Close>("close"),
                       });
  }

  explicit Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {
    Napi::Env env = info.Env();
    int fd = ArgFd(info, 0);
    if (!info[1].IsFunction()) ThrowTypeError(env, "callback must be a function");
    // Optional (Linux): read before calling back, see ReadFirst. cell[0]: maxPackets (0: do not
    // read), written by the caller at any time.
    const bool readFirst = info.Length() >= 3 && info[2].IsTypedArray();
    if (readFirst) {
      size_t cellLength = 0;
      GetInt32Array(env, info[2], &cell_, &cellLength, "cell must be an Int32Array");
      if (cellLength < 1) ThrowRangeError(env, "cell must hold 1 entry");
    }
    EnvState* state = State(env);
    if (state->tornDown) throw Napi::Error::New(env, "the environment is shutting down");
    if (state->pollers.count(fd) != 0) ThrowErrno(env, EEXIST, "uv_poll_init");
    auto* h = new PollHandle();
    int err = uv_poll_init(state->loop, &h->poll, fd);
    if (err != 0) {
      delete h;
      ThrowErrno(env, -err, "uv_poll_init");
    }
    // From here on nothing throws: the handle must be closed through uv_close only.
    h->poll.data = h;
    h->state = state;
    h->owner = this;
    h->fd = fd;
    Retain(state);
    state->liveHandles++;
    state->pollers[fd] = h;
    h_ = h;
    napi_create_reference(env, info[1], 1, &callback_);
    if (readFirst) napi_create_reference(env, info[2], 1, &cellRef_);
    napi_value name;
    napi_create_string_utf8(env, "electron-ipc-channel:Poller", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, nullptr, name, &context_);
  }

  ~Poller() override {
    if (h_ != nullptr) ClosePollHandle(h_);
    if (context_ != nullptr) napi_async_destroy(Env(), context_);
    if (callback_ != nullptr) napi_delete_reference(Env(), callback_);
    if (cellRef_ != nullptr) napi_delete_reference(Env(), cellRef_);
  }

  void Detach() { h_ = nullptr; }

  // Runs on the JS thread from the uv loop, so it must never throw (a C++ exception out of a libuv
  // callback ends the process): raw napi calls only, every status checked.
  void Fire(int status, int events) {
    napi_env env = Env();
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    // Holding the wrapper in this scope keeps the Poller alive through the callback.
    napi_value self = nullptr;
    napi_value fn = nullptr;
    napi_get_reference_value(env, static_cast<napi_ref>(*this), &self);
    napi_get_reference_value(env, callback_, &fn);
    if (self != nullptr && fn != nullptr) {
      napi_value argv[3];
      napi_value result;
      size_t argc = 2;
      napi_create_int32(env, status, &argv[0]);
      napi_create_int32(env, events, &argv[1]);
      int read;
      if (status >= 0 && ReadFirst(env, &read)) {
        napi_create_int32(env, read, &argv[2]);
        argc = 3;
      }
      // napi_pending_exception with no exception pending: the environment is terminating
      // (worker.terminate(), process exit) and JS can no longer run; nothing to report.
      if (napi_make_callback(env, context_, self, fn, argc, argv, &result) == napi_pending_exception) {
        bool pending = false;
        napi_value exception;
        if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
            napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
          napi_fatal_exception(env, exception);
        }
      }
    }
    napi_close_handle_scope(env, scope);
  }

 private:
  // A Poller made with a cell whose element 0 (maxPackets) is > 0 reads the socket before it
  // calls back, as recvBound(fd, maxPackets) would (the thread's binding, see BindRecv), and passes
  // what that returned as the third argument (errors as a negated errno, never thrown): one
  // JS-to-native call less per wake-up. False (no read, two arguments) when the cell says not
  // to, there is no binding or no room in its arena, or on other systems than Linux.
  bool ReadFirst(napi_env env, int* out) {
#ifdef __linux__
    if (cell_ == nullptr || h_ == nullptr || cell_[0] <= 0) return false;
    RecvArgs args;
    if (!BoundRecvArgs(env, h_->fd, cell_[0], false, &args)) return false;
    try {
      *out = RecvPacketsRaw(env, args);
    } catch (...) {
      return false;  // nothing escapes a libuv callback (see Fire)
    }
    return true;
#else
    (void)env;
    (void)out;
    return false;
#endif
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    int events = ArgInt(info, 0, 0, 7, "events must be a combination of POLL_READABLE, POLL_WRITABLE and POLL_DISCONNECT");
    if (h_ == nullptr) throw Napi::Error::New(info.Env(), "the poller is closed");
    uv_handle_t* handle = reinterpret_cast<uv_handle_t*>(&h_->poll);
    if (events == 0) {
      uv_poll_stop(&h_->poll);
      return info.Env().Undefined();
    }
    if (uv_is_active(handle) && events == events_) return info.Env().Undefined();
    // libuv aborts the process when epoll_ctl fails with EBADF inside the loop.
    if (fcntl(h_->fd, F_GETFD) < 0) ThrowErrno(info.Env(), errno, "uv_poll_start");
    int err = uv_poll_start(&h_->poll, events, OnPoll);
    if (err != 0) ThrowErrno(info.Env(), -err, "uv_poll_start");
    events_ = events;
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (h_ != nullptr) uv_poll_stop(&h_->poll);
    return info.Env().Undefined();
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (h_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&h_->poll));
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (h_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&h_->poll));
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (h_ != nullptr) ClosePollHandle(h_);
    return info.Env().Undefined();
  }

  PollHandle* h_ = nullptr;
  int events_ = 0;
  napi_ref callback_ = nullptr;
  napi_async_context context_ = nullptr;
  // Read-first state (see ReadFirst): the caller's cell, kept alive by cellRef_.
  int32_t* cell_ = nullptr;
  napi_ref cellRef_ = nullptr;
};

namespace {

void OnPoll(uv_poll_t* poll, int status, int events) {
  PollHandle* h = static_cast<PollHandle*>(poll->data);
  if (h->owner != nullptr) h->owner->Fire(status, events);
}

void OnPollClosed(uv_handle_t* handle) {
  PollHandle* h = static_cast<PollHandle*>(handle->data);
  EnvState* state = h->state;
  delete h;
  PollHandleFreed(state);
}

}  // namespace

void ClosePollHandle(PollHandle* h) {
  if (h->owner != nullptr) {
    h->owner->Detach();
    h->owner = nullptr;
  }
  auto it = h->state->pollers.find(h->fd);
  if (it != h->state->pollers.end() && it->second == h) h->state->pollers.erase(it);
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnPollClosed);
}

void InitChannel(Napi::Env env, Napi::Object exports) {
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("dup", Napi::Function::New(env, Dup, "dup"));
  exports.Set("adopt", Napi::Function::New(env, Adopt, "adopt"));
  exports.Set("fdInfo", Napi::Function::New(env, FdInfo, "fdInfo"));
  exports.Set("openCount", Napi::Function::New(env, OpenCountFn, "openCount"));
  exports.Set("setBufferSizes", Napi::Function::New(env, SetBufferSizes, "setBufferSizes"));
  exports.Set("peerHungUp", Napi::Function::New(env, PeerHungUp, "peerHungUp"));
  exports.Set("waitFds", Napi::Function::New(env, WaitFds, "waitFds"));
  exports.Set("shutdownWrite", Napi::Function::New(env, ShutdownWrite, "shutdownWrite"));
  exports.Set("setBlocking", Napi::Function::New(env, SetBlocking, "setBlocking"));
  exports.Set("Poller", Poller::Define(env));
#ifdef __linux__
  exports.Set("bindRecv", Napi::Function::New(env, BindRecv, "bindRecv"));
  exports.Set("recvBound", Napi::Function::New(env, RecvBound, "recvBound"));
#endif
}

}  // namespace eic
