// The POSIX stream transport: AF_UNIX SOCK_STREAM with explicit framing, shaped like what macOS
// offers (no SOCK_SEQPACKET, no MSG_CMSG_CLOEXEC, no memfd seals), built and run on Linux too.
// Every function runs on the JS thread of the environment that calls it.
//
// Wire format, one frame per packet of the typed layer:
//   u32 LE payloadBytes | u32 LE fdCount | payloadBytes bytes of payload
// The descriptors (fdCount, at most 253) travel as SCM_RIGHTS on the sendmsg whose data begins
// with the frame header's first byte. The reader takes exactly the header, then exactly the
// payload, so no read ever crosses into the next frame: both kernels attach a message's
// descriptors to the read that takes its first byte (Linux stops that read right after the
// message's bytes; XNU returns a record's control data with its first bytes), so descriptors
// arriving with any read that does not begin a header mean the stream is out of step.
//
// State per descriptor (EnvState::streams, only while there is some):
// - write side: the rest of at most one frame that sendmsg took only in part (the first byte and
//   the descriptors went; the rest is copied here and written by flushPending or the next send);
// - read side: at most one partial frame (header bytes, payload bytes so far, its descriptors,
//   which this state owns: they are in no table until the frame is delivered);
// - broken: the stream went out of step; reads report end of file from then on.
// It is dropped when the number stops naming the socket (UnregisterFd: close through the addon;
// RegisterFds: the number was reused), and at environment teardown (FreeStreams).
//
// Close-on-exec race (platforms without SOCK_CLOEXEC / MSG_CMSG_CLOEXEC / accept4, i.e. macOS):
// sockets are created, accepted and received without FD_CLOEXEC, which is set by fcntl right
// after. A fork+exec by another thread of the process in between (a worker, a native thread;
// not this JS thread, which is busy here) hands the new descriptor to the child. libuv's
// uv_spawn on macOS uses posix_spawn with POSIX_SPAWN_CLOEXEC_DEFAULT, which closes it anyway;
// other code that forks does not. On Linux the atomic flags are used and there is no race.
//
// SIGPIPE: MSG_NOSIGNAL where it exists; else SO_NOSIGPIPE on every socket the addon creates
// (a socket received from a peer may lack it, but Node ignores SIGPIPE process-wide, so a write
// to a closed peer still fails with EPIPE).
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <random>
#include <string>
#include <vector>

#if defined(__linux__) && !defined(F_GET_SEALS)
#define F_GET_SEALS 1034
#endif

namespace eic {

struct StreamFd {
  // Write side: the unwritten rest of one accepted frame (restLen bytes, restDone written).
  uint8_t* rest = nullptr;
  size_t restLen = 0;
  size_t restDone = 0;
  // Read side: the frame being read. header[0, headerGot) so far; once haveHeader, its fields,
  // and payload[0, payloadGot) in `payload` (payloadBytes allocated; null while the bytes read
  // in this call are still in the caller's arena).
  uint8_t header[8];
  uint32_t headerGot = 0;
  bool haveHeader = false;
  uint32_t payloadBytes = 0;
  uint32_t fdCount = 0;
  uint8_t* payload = nullptr;
  size_t payloadGot = 0;
  // The frame's descriptors, owned here (in no table) until it is delivered.
  std::vector<int> fds;
  // Out of step: every read reports end of file.
  bool broken = false;
};

namespace {

constexpr size_t kHeaderBytes = 8;
// The largest payload a frame may carry: the typed layer's biggest packet (1 MiB of a fragment,
// 64 KiB of batched records, 48 bytes of headers).
constexpr size_t kMaxPayloadBytes = (size_t{1} << 20) + (size_t{64} << 10) + 48;
// PACKET_TRUNCATED in src/main/native.ts: a packet of length 0 with it is a broken stream.
constexpr int kPacketTruncated = 1;

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_DONTWAIT | MSG_NOSIGNAL;
#else
constexpr int kSendFlags = MSG_DONTWAIT;
#endif
#ifdef MSG_CMSG_CLOEXEC
constexpr int kRecvFlags = MSG_CMSG_CLOEXEC;
#else
constexpr int kRecvFlags = 0;
#endif

inline uint32_t LoadLE32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

inline void StoreLE32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// ---- per-descriptor state

StreamFd* Find(EnvState* s, int fd) {
  if (s->streams.empty()) return nullptr;
  auto it = s->streams.find(fd);
  return it == s->streams.end() ? nullptr : it->second;
}

bool ReadIdle(const StreamFd* f) { return f->headerGot == 0 && !f->haveHeader && f->fds.empty() && f->payload == nullptr; }

bool Idle(const StreamFd* f) { return f->rest == nullptr && ReadIdle(f) && !f->broken; }

// Drops the partial frame: its descriptors are closed (a peer chose them), its bytes freed.
void ClearRead(StreamFd* f) {
  for (int fd : f->fds) CloseQuietly(fd);
  f->fds.clear();
  f->fds.shrink_to_fit();
  free(f->payload);
  f->payload = nullptr;
  f->payloadGot = 0;
  f->payloadBytes = 0;
  f->fdCount = 0;
  f->headerGot = 0;
  f->haveHeader = false;
}

void ClearWrite(StreamFd* f) {
  free(f->rest);
  f->rest = nullptr;
  f->restLen = 0;
  f->restDone = 0;
}

void Delete(StreamFd* f) {
  ClearRead(f);
  ClearWrite(f);
  delete f;
}

// Removes the state of `fd` if nothing is left in it.
void DropIfIdle(EnvState* s, int fd, StreamFd* f) {
  if (f == nullptr || !Idle(f)) return;
  s->streams.erase(fd);
  delete f;
}

// ---- descriptor set-up where atomic flags are missing

int SetCloexec(int fd) {
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) != 0) return errno;
  return 0;
}

int SetNonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return errno;
  return 0;
}

// A socket the addon made (registered already): close-on-exec where creation could not do it,
// non-blocking when asked, and SO_NOSIGPIPE where MSG_NOSIGNAL does not exist. Returns 0 or an
// errno with the name of the failed call in *syscall.
int PrepareSocket(int fd, bool atomicFlags, bool nonblocking, const char** syscall) {
  int err = 0;
  if (!atomicFlags) {
    *syscall = "fcntl";
    if ((err = SetCloexec(fd)) != 0) return err;
    if (nonblocking && (err = SetNonblocking(fd)) != 0) return err;
  }
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
  int one = 1;
  *syscall = "setsockopt";
  if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) return errno;
#endif
  return err;
}

// A new AF_UNIX socket of `type`, registered, close-on-exec (and non-blocking when asked).
int NewSocket(napi_env env, int type, bool nonblocking) {
#ifdef SOCK_CLOEXEC
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  const bool atomicFlags = true;
#else
  int fd = socket(AF_UNIX, type, 0);
  const bool atomicFlags = false;
#endif
  if (fd < 0) ThrowErrno(env, errno, "socket");
  RegisterFd(env, fd, FdOrigin::kUnixSocket);
  const char* syscall = "";
  int err = PrepareSocket(fd, atomicFlags, nonblocking, &syscall);
  if (err != 0) {
    CloseFd(env, fd);
    ThrowErrno(env, err, syscall);
  }
  return fd;
}

// ---- sockets

Napi::Value Socketpair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
#ifdef SOCK_CLOEXEC
  const bool atomicFlags = true;
  int r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv);
#else
  const bool atomicFlags = false;
  int r = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
#endif
  if (r != 0) ThrowErrno(env, errno, "socketpair");
  RegisterFds(env, sv, 2, FdOrigin::kUnixSocket);
  FdGuard a(env, sv[0]);
  FdGuard b(env, sv[1]);
  const char* syscall = "";
  for (int fd : sv) {
    int err = PrepareSocket(fd, atomicFlags, true, &syscall);
    if (err != 0) ThrowErrno(env, err, syscall);
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, a.release()));
  pair.Set(1u, Napi::Number::New(env, b.release()));
  return pair;
}

}  // namespace

// The one-shot server's sockets, for every backend (declared in common.h).
int UnixListen(napi_env env, int type, const std::string& path) {
  struct sockaddr_un addr;
  socklen_t addrLength = UnixAddress(path, &addr);
  if (addrLength == 0) ThrowErrno(env, ENAMETOOLONG, "bind");
  int fd = NewSocket(env, type, true);
  FdGuard owned(env, fd);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), addrLength) != 0) ThrowErrno(env, errno, "bind");
  if (listen(fd, 1) != 0) ThrowErrno(env, errno, "listen");
  return owned.release();
}

int UnixAccept(napi_env env, int listener) {
  int fd;
#if defined(__linux__)
  const bool atomicFlags = true;
  do {
    fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  const char* call = "accept4";
#else
  const bool atomicFlags = false;
  do {
    fd = accept(listener, nullptr, nullptr);
  } while (fd < 0 && errno == EINTR);
  const char* call = "accept";
#endif
  if (fd < 0) {
    // ECONNABORTED: the connection went away before it was accepted; wait for the next one.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return -EAGAIN;
    ThrowErrno(env, errno, call);
  }
  RegisterFd(env, fd, FdOrigin::kUnixSocket);
  FdGuard guard(env, fd);
  const char* syscall = "";
  // BSD accept() copies O_NONBLOCK from the listener and Linux's does not: set it either way.
  int err = PrepareSocket(fd, atomicFlags, true, &syscall);
  if (err != 0) ThrowErrno(env, err, syscall);
  return guard.release();
}

int UnixConnect(napi_env env, int type, const std::string& path) {
  struct sockaddr_un addr;
  socklen_t addrLength = UnixAddress(path, &addr);
  if (addrLength == 0) ThrowErrno(env, ENAMETOOLONG, "connect");
  int fd = NewSocket(env, type, false);
  FdGuard owned(env, fd);
  // A Unix connect interrupted by a signal leaves the socket unconnected, so it can be retried.
  int r;
  do {
    r = connect(fd, reinterpret_cast<struct sockaddr*>(&addr), addrLength);
  } while (r != 0 && errno == EINTR);
  if (r != 0) ThrowErrno(env, errno, "connect");
  int err = SetNonblocking(fd);
  if (err != 0) ThrowErrno(env, err, "fcntl");
  return owned.release();
}

namespace {

Napi::Value Listen(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), UnixListen(info.Env(), SOCK_STREAM, ArgPath(info, 0)));
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), UnixAccept(info.Env(), ArgFd(info, 0)));
}

Napi::Value Connect(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), UnixConnect(info.Env(), SOCK_STREAM, ArgPath(info, 0)));
}

// Linux: SO_PEERCRED. macOS: getpeereid() for uid/gid, LOCAL_PEERPID for the pid. Both record
// the peer as it was at connect()/socketpair() time.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  double pid, uid, gid;
#if defined(__linux__)
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) ThrowErrno(env, errno, "getsockopt");
  pid = cred.pid;
  uid = cred.uid;
  gid = cred.gid;
#elif defined(__APPLE__)
  uid_t u;
  gid_t g;
  if (getpeereid(fd, &u, &g) != 0) ThrowErrno(env, errno, "getpeereid");
  pid_t p = 0;
  socklen_t len = sizeof p;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &p, &len) != 0) ThrowErrno(env, errno, "getsockopt");
  pid = p;
  uid = u;
  gid = g;
#else
  (void)fd;
  pid = uid = gid = 0;
  ThrowErrno(env, ENOSYS, "peerCredentials");
#endif
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, pid));
  out.Set("uid", Napi::Number::New(env, uid));
  out.Set("gid", Napi::Number::New(env, gid));
  return out;
}

// ---- writing frames

// Writes what is left of f's rest: 0 when all of it is written, -EAGAIN (or -ENOBUFS) when some
// remains, -EPIPE / -ECONNRESET when the peer is gone (the rest is dropped: it can never be
// delivered). Throws for any other errno.
int Flush(napi_env env, int fd, StreamFd* f) {
  while (f->restDone < f->restLen) {
    ssize_t r = send(fd, f->rest + f->restDone, f->restLen - f->restDone, kSendFlags);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return -EAGAIN;
      if (err == ENOBUFS) return -ENOBUFS;
      if (err == EPIPE || err == ECONNRESET) {
        ClearWrite(f);
        return -err;
      }
      ThrowErrno(env, err, "send");
    }
    if (r == 0) return -EAGAIN;
    f->restDone += static_cast<size_t>(r);
  }
  ClearWrite(f);
  return 0;
}

Napi::Value SendPacket(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  Iovecs parts(env, info[1], false, "parts must be an array of 0 to 1023 typed arrays");
  if (parts.count() >= IOV_MAX) ThrowRangeError(env, "parts must be an array of 0 to 1023 typed arrays");
  // The descriptors, checked before anything is written.
  int fds[kMaxFdsPerPacket];
  uint32_t fdCount = 0;
  napi_valuetype fdListType;
  napi_typeof(env, info[2], &fdListType);
  if (fdListType != napi_null && fdListType != napi_undefined) {
    bool isArray = false;
    if (napi_is_array(env, info[2], &isArray) != napi_ok || !isArray) ThrowTypeError(env, "fds must be an array or null");
    napi_get_array_length(env, info[2], &fdCount);
    if (fdCount > static_cast<uint32_t>(kMaxFdsPerPacket)) ThrowRangeError(env, "a packet carries at most 253 descriptors");
    for (uint32_t i = 0; i < fdCount; i++) {
      napi_value v;
      double d;
      if (napi_get_element(env, info[2], i, &v) != napi_ok || napi_get_value_double(env, v, &d) != napi_ok ||
          !(d >= 0 && d <= INT_MAX) || d != static_cast<double>(static_cast<int>(d))) {
        ThrowTypeError(env, "fds must hold integers >= 0");
      }
      fds[i] = static_cast<int>(d);
    }
  }
  size_t payload = 0;
  for (uint32_t i = 0; i < parts.count(); i++) payload += parts.data()[i].iov_len;
  napi_value result;
  if (payload > kMaxPayloadBytes) {
    napi_create_int32(env, -EMSGSIZE, &result);
    return Napi::Value(env, result);
  }

  // An earlier frame's rest goes first; while any of it remains, nothing new is accepted.
  EnvState* s = State(env);
  StreamFd* f = Find(s, fd);
  if (f != nullptr && f->rest != nullptr) {
    int r = Flush(env, fd, f);
    if (r != 0) {
      napi_create_int32(env, r, &result);
      return Napi::Value(env, result);
    }
  }

  uint8_t header[kHeaderBytes];
  StoreLE32(header, static_cast<uint32_t>(payload));
  StoreLE32(header + 4, fdCount);
  struct iovec stackIov[kStackIov + 1];
  std::vector<struct iovec> heapIov;
  struct iovec* iov = stackIov;
  uint32_t iovCount = parts.count() + 1;
  if (iovCount > kStackIov + 1) {
    heapIov.resize(iovCount);
    iov = heapIov.data();
  }
  iov[0].iov_base = header;
  iov[0].iov_len = kHeaderBytes;
  memcpy(iov + 1, parts.data(), sizeof(struct iovec) * parts.count());
  struct msghdr msg = {};
  msg.msg_iov = iov;
  msg.msg_iovlen = iovCount;
  ControlBuffer ctrl;
  if (fdCount > 0) {
    memset(ctrl.bytes, 0, CMSG_SPACE(sizeof(int) * fdCount));
    msg.msg_control = ctrl.bytes;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fdCount);
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fdCount);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * fdCount);
  }
  const size_t total = kHeaderBytes + payload;
  ssize_t r;
  do {
    r = sendmsg(fd, &msg, kSendFlags);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    if (err == EWOULDBLOCK) err = EAGAIN;
    switch (err) {
      case EAGAIN:
      case EPIPE:
      case ECONNRESET:
      case ENOBUFS:
        napi_create_int32(env, -err, &result);
        return Napi::Value(env, result);
      default:
        ThrowErrno(env, err, "sendmsg");
    }
  }
  // A stream sendmsg of a non-empty buffer writes at least one byte or fails.
  if (r == 0) {
    napi_create_int32(env, -EAGAIN, &result);
    return Napi::Value(env, result);
  }
  if (static_cast<size_t>(r) < total) {
    // The header's first byte and the descriptors are in the socket: the frame is accepted, and
    // the rest is copied now (the caller's buffers may change as soon as this returns).
    size_t restLen = total - static_cast<size_t>(r);
    uint8_t* rest = static_cast<uint8_t*>(malloc(restLen));
    if (rest == nullptr) {
      // The stream cannot be kept in step without the rest: a peer would read garbage.
      shutdown(fd, SHUT_WR);
      ThrowErrno(env, ENOMEM, "sendmsg");
    }
    size_t skip = static_cast<size_t>(r);
    size_t at = 0;
    for (uint32_t i = 0; i < iovCount; i++) {
      size_t len = iov[i].iov_len;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      memcpy(rest + at, static_cast<uint8_t*>(iov[i].iov_base) + skip, len - skip);
      at += len - skip;
      skip = 0;
    }
    if (f == nullptr) {
      f = new StreamFd();
      s->streams[fd] = f;
    }
    f->rest = rest;
    f->restLen = restLen;
    f->restDone = 0;
  } else {
    DropIfIdle(s, fd, f);
  }
  napi_create_double(env, static_cast<double>(payload), &result);
  return Napi::Value(env, result);
}

Napi::Value FlushPending(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  EnvState* s = State(env);
  StreamFd* f = Find(s, fd);
  int r = 0;
  if (f != nullptr && f->rest != nullptr) r = Flush(env, fd, f);
  DropIfIdle(s, fd, f);
  return Napi::Number::New(env, r);
}

Napi::Value HasPending(const Napi::CallbackInfo& info) {
  StreamFd* f = Find(State(info.Env()), ArgFd(info, 0));
  return Napi::Boolean::New(info.Env(), f != nullptr && f->rest != nullptr);
}

Napi::Value HasPartial(const Napi::CallbackInfo& info) {
  StreamFd* f = Find(State(info.Env()), ArgFd(info, 0));
  return Napi::Boolean::New(info.Env(), f != nullptr && !f->broken && !ReadIdle(f));
}

// ---- reading frames

// One recvmsg of at most `len` bytes (len > 0) into `buf`, with room for every control message.
// Returns the byte count, 0 at end of file, or -errno. The SCM_RIGHTS descriptors it brings are
// appended to `fds` when that is given (close-on-exec, not registered), else closed, and
// *outOfStep is set; so is it when the kernel truncated the control data (MSG_CTRUNC). Every
// other descriptor a control message carries (SCM_PIDFD) is closed.
ssize_t ReadPiece(int fd, void* buf, size_t len, bool wait, std::vector<int>* fds, bool* outOfStep) {
  ControlBuffer ctrl;
  struct iovec iov = {buf, len};
  struct msghdr msg = {};
  ssize_t r;
  bool retried = false;
  for (;;) {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.bytes;
    msg.msg_controllen = sizeof ctrl.bytes;
    msg.msg_flags = 0;
    r = recvmsg(fd, &msg, (wait ? 0 : MSG_DONTWAIT) | kRecvFlags);
    if (r >= 0) break;
    int err = errno;
    if (err == EINTR) continue;
    // The one-shot error a peer leaves when it closes with data unread; what it sent before is
    // still queued, then end of file follows.
    if (err == ECONNRESET && !retried) {
      retried = true;
      continue;
    }
    return err == EWOULDBLOCK ? -EAGAIN : -err;
  }
  bool stray = false;
  ForEachControlFd(&msg, [&](int got) {
    if (fds == nullptr || fds->size() >= static_cast<size_t>(kMaxFdsPerPacket)) {
      stray = true;
      return false;
    }
#ifndef MSG_CMSG_CLOEXEC
    SetCloexec(got);
#endif
    fds->push_back(got);
    return true;
  });
  if (stray || (msg.msg_flags & MSG_CTRUNC) != 0) *outOfStep = true;
  return r;
}

// recvPackets(fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block?): the
// contract of the seqpacket arena mode (src/main/native.ts), over frames.
Napi::Value RecvPackets(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const RecvArgs args = ParseRecvArgs(info, true);
  const int fd = args.fd;
  int32_t* const meta = args.meta;
  int32_t* const fdsOut = args.fdsOut;
  const size_t fdsCapacity = args.fdsCapacity;
  const int maxPackets = args.maxPackets;
  const int maxPacketBytes = args.maxPacketBytes;
  const size_t slot = args.slot;
  uint8_t* const buf = args.buf;
  const size_t arenaBase = args.arenaBase;
  const size_t budget = args.budget;
  // With `block`, reads go without MSG_DONTWAIT until the first frame is whole: they wait when
  // the file is in blocking mode (setBlocking) and fail with EAGAIN at once when it is not.
  const bool block = args.block;

  EnvState* s = State(env);
  StreamFd* kept = Find(s, fd);
  if (kept != nullptr && kept->broken) {
    meta[0] = 0;
    meta[1] = 1;
    return Napi::Number::New(env, 0);
  }
  // The frame state of this call: the kept one, or a local one that is kept (moved to the heap)
  // only if it ends up holding something, also when this call throws.
  StreamFd local;
  StreamFd* f = kept != nullptr ? kept : &local;
  struct Keep {
    EnvState* s;
    int fd;
    StreamFd* kept;
    StreamFd* local;
    ~Keep() {
      if (kept != nullptr) {
        DropIfIdle(s, fd, kept);
      } else if (!Idle(local)) {
        // Destructors must not throw: without memory for the state, the frame is dropped.
        StreamFd* h = new (std::nothrow) StreamFd(std::move(*local));
        local->fds.clear();
        local->payload = nullptr;
        if (h == nullptr) {
          ClearRead(local);
          return;
        }
        try {
          s->streams[fd] = h;
        } catch (...) {
          Delete(h);
        }
      }
    }
  } keep{s, fd, kept, &local};

  int n = 0;
  size_t off = 0;
  size_t fdsUsed = 0;
  bool eof = false;
  bool outOfStep = false;
  // Moves payload bytes read into the arena this call to the frame's own buffer, before
  // returning with the frame unfinished (the caller reuses the arena).
  auto savePartial = [&]() {
    if (!f->haveHeader || f->payload != nullptr || f->payloadGot == 0) return;
    f->payload = static_cast<uint8_t*>(malloc(f->payloadBytes));
    if (f->payload == nullptr) throw std::bad_alloc();
    memcpy(f->payload, buf + off, f->payloadGot);
  };
  while (n < maxPackets) {
    const bool wait = block && n == 0;
    if (!f->haveHeader) {
      if (f->headerGot == 0 && n > 0 && off + slot > budget) break;
      ssize_t r = ReadPiece(fd, f->header + f->headerGot, kHeaderBytes - f->headerGot, wait, f->headerGot == 0 ? &f->fds : nullptr,
                            &outOfStep);
      if (outOfStep) break;
      if (r == 0) {
        eof = true;
        break;
      }
      if (r < 0) {
        if (r == -EAGAIN || n > 0) break;
        ThrowErrno(env, static_cast<int>(-r), "recvmsg");
      }
      f->headerGot += static_cast<uint32_t>(r);
      if (f->headerGot < kHeaderBytes) continue;
      f->haveHeader = true;
      f->payloadBytes = LoadLE32(f->header);
      f->fdCount = LoadLE32(f->header + 4);
      if (f->fdCount != f->fds.size()) {
        outOfStep = true;
        break;
      }
    }
    if (f->payloadBytes > static_cast<uint32_t>(maxPacketBytes)) {
      outOfStep = true;
      break;
    }
    if (f->fdCount > fdsCapacity - fdsUsed) {
      if (n == 0) ThrowRangeError(env, "the next packet carries more descriptors than fdsOut can hold");
      break;
    }
    uint8_t* dst = f->payload != nullptr ? f->payload : buf + off;
    bool done = true;
    while (f->payloadGot < f->payloadBytes) {
      ssize_t r = ReadPiece(fd, dst + f->payloadGot, f->payloadBytes - f->payloadGot, wait, nullptr, &outOfStep);
      if (outOfStep) break;
      if (r == 0) {
        eof = true;
        break;
      }
      if (r < 0) {
        savePartial();
        if (r == -EAGAIN || n > 0) {
          done = false;
          break;
        }
        ThrowErrno(env, static_cast<int>(-r), "recvmsg");
      }
      f->payloadGot += static_cast<size_t>(r);
    }
    if (outOfStep || eof || !done) break;
    // Whole: deliver it at `off`.
    if (f->payload != nullptr) memcpy(buf + off, f->payload, f->payloadBytes);
    for (size_t i = 0; i < f->fds.size(); i++) fdsOut[fdsUsed + i] = f->fds[i];
    int got = static_cast<int>(f->fds.size());
    f->fds.clear();
    RegisterFds(env, fdsOut + fdsUsed, got);
    int32_t* m = meta + 2 + 4 * n;
    m[0] = static_cast<int32_t>(arenaBase + off);
    m[1] = static_cast<int32_t>(f->payloadBytes);
    m[2] = got;
    m[3] = 0;
    fdsUsed += static_cast<size_t>(got);
    n++;
    size_t end = off + f->payloadBytes;
    off = Align8(end);
    memset(buf + end, 0, off - end);
    ClearRead(f);
  }
  if (eof) {
    // A frame cut short by end of file is dropped, its descriptors closed.
    ClearRead(f);
  }
  if (outOfStep) {
    // Nothing read from this stream can be trusted any more: close what the frame holds, report
    // one empty truncated packet (the typed layer makes it one MALFORMED), then end of file.
    ClearRead(f);
    f->broken = true;
    int32_t* m = meta + 2 + 4 * n;
    m[0] = static_cast<int32_t>(arenaBase + off);
    m[1] = 0;
    m[2] = 0;
    m[3] = kPacketTruncated;
    n++;
    eof = true;
  }
  meta[0] = n;
  meta[1] = eof ? 1 : 0;
  return Napi::Number::New(env, n > 0 ? n : eof ? 0 : -EAGAIN);
}

// ---- shared memory without seals

[[noreturn]] void ThrowCoded(napi_env env, const char* code, const std::string& text, const char* syscall) {
  Napi::Error error = Napi::Error::New(env, std::string(code) + ": " + text + ", " + syscall);
  napi_value obj = error.Value();
  napi_value v;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, "code", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, "syscall", v);
  throw error;
}

[[noreturn]] void ThrowTruncated(napi_env env, int64_t length, int64_t size) {
  ThrowCoded(env, "ETRUNCATED",
             "shared memory shorter than announced (" + std::to_string(size) + " of " + std::to_string(length) +
                 " bytes: its other holder truncated it)",
             "pread");
}

// shmCreate(size): [rwFd, roFd] of one new POSIX shared memory object of `size` bytes, already
// unlinked, so the two descriptors (and what they are sent to) are its only references.
Napi::Value ShmCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t size = ArgSize(info, 0, "size must be an integer >= 0");
  // macOS allows 31 characters (PSHMNAMLEN); "/eic-" and 16 hex digits are 21. The name exists
  // from O_CREAT to shm_unlink, microseconds; a process of the same user that guesses 64 random
  // bits in that window could open it (it could also ptrace this one).
  static std::random_device* random = new std::random_device;
  char name[32];
  int rw = -1;
  for (int attempt = 0; attempt < 16 && rw < 0; attempt++) {
    uint64_t bits = (static_cast<uint64_t>((*random)()) << 32) ^ (*random)();
    snprintf(name, sizeof name, "/eic-%016llx", static_cast<unsigned long long>(bits));
    rw = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (rw < 0 && errno != EEXIST) ThrowErrno(env, errno, "shm_open");
  }
  if (rw < 0) ThrowErrno(env, EEXIST, "shm_open");
  RegisterFd(env, rw, FdOrigin::kSharedMemory);
  FdGuard rwGuard(env, rw);
  int ro = shm_open(name, O_RDONLY, 0);
  int err = ro < 0 ? errno : 0;
  if (ro >= 0) RegisterFd(env, ro, FdOrigin::kSharedMemory);
  FdGuard roGuard(env, ro);
  if (shm_unlink(name) != 0 && err == 0 && errno != ENOENT) err = errno;
  if (err != 0) ThrowErrno(env, err, ro < 0 ? "shm_open" : "shm_unlink");
#ifndef __linux__
  // glibc's shm_open always adds O_CLOEXEC; elsewhere see the race at the top of this file.
  if ((err = SetCloexec(rw)) != 0 || (err = SetCloexec(ro)) != 0) ThrowErrno(env, err, "fcntl");
#endif
  // macOS sizes an object once (a second ftruncate fails), so a size of 0 is left unset.
  if (size > 0 && ftruncate(rw, static_cast<off_t>(size)) != 0) ThrowErrno(env, errno, "ftruncate");
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, rwGuard.release()));
  pair.Set(1u, Napi::Number::New(env, roGuard.release()));
  return pair;
}

// readAll(fd, length): the first `length` bytes of a shared memory object, copied into a new
// ArrayBuffer. A copy, not a mapping: without seals the sender keeps the power to truncate the
// object, and a mapping of a truncated file faults (SIGBUS) on the pages past its new end.
// Linux: pread of a shmem file (F_GET_SEALS answers only for tmpfs, memfd and hugetlbfs, whose
// reads never wait on another process; anything else is refused with EINVAL, so a FUSE or NFS
// file cannot make this thread wait for its server). macOS: POSIX shared memory objects refuse
// read(2) (ENOTSUP), so they are mapped and copied, which is safe there: an object's size is set
// once and can never shrink.
Napi::Value ReadAll(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  int64_t length = ArgSize(info, 1, "length must be an integer >= 0");
  if (length > kMaxCopyBytes) ThrowTooLarge(env, length);
  struct stat st;
#if defined(__linux__)
  if (fcntl(fd, F_GET_SEALS) < 0) {
    if (errno == EINVAL) ThrowCoded(env, "EINVAL", "the descriptor is not shared memory", "readAll");
    ThrowErrno(env, errno, "fcntl");
  }
#endif
  if (fstat(fd, &st) != 0) ThrowErrno(env, errno, "fstat");
#if defined(__APPLE__)
  // A POSIX shared memory object has no file type bits in st_mode (pshm_stat).
  if ((st.st_mode & S_IFMT) != 0) ThrowCoded(env, "EINVAL", "the descriptor is not shared memory", "readAll");
#endif
  if (static_cast<int64_t>(st.st_size) < length) ThrowTruncated(env, length, static_cast<int64_t>(st.st_size));
  void* data = nullptr;
  napi_value ab = NewArrayBuffer(env, static_cast<size_t>(length), &data);
  if (length == 0) return Napi::Value(env, ab);
#if defined(__APPLE__)
  void* addr = mmap(nullptr, static_cast<size_t>(length), PROT_READ, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) ThrowErrno(env, errno, "mmap");
  memcpy(data, addr, static_cast<size_t>(length));
  munmap(addr, static_cast<size_t>(length));
#else
  char* p = static_cast<char*>(data);
  size_t done = 0;
  while (done < static_cast<size_t>(length)) {
    ssize_t r = pread(fd, p + done, static_cast<size_t>(length) - done, static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, errno, "pread");
    }
    if (r == 0) ThrowTruncated(env, length, static_cast<int64_t>(done));
    done += static_cast<size_t>(r);
  }
#endif
  return Napi::Value(env, ab);
}

Napi::Value AccessMode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fl = fcntl(ArgFd(info, 0), F_GETFL);
  if (fl < 0) ThrowErrno(env, errno, "fcntl");
  switch (fl & O_ACCMODE) {
    case O_RDONLY:
      return Napi::String::New(env, "r");
    case O_WRONLY:
      return Napi::String::New(env, "w");
    case O_RDWR:
      return Napi::String::New(env, "rw");
    default:
      ThrowErrno(env, EINVAL, "fcntl");
  }
}

// stats(): what the framing state of this environment holds (diagnostics and tests).
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnvState* s = State(env);
  double bytes = 0;
  double fds = 0;
  for (const auto& entry : s->streams) {
    const StreamFd* f = entry.second;
    if (f->rest != nullptr) bytes += static_cast<double>(f->restLen);
    if (f->payload != nullptr) bytes += f->payloadBytes;
    fds += static_cast<double>(f->fds.size());
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("states", Napi::Number::New(env, static_cast<double>(s->streams.size())));
  out.Set("bytes", Napi::Number::New(env, bytes));
  out.Set("fds", Napi::Number::New(env, fds));
  return out;
}

}  // namespace

void ForgetStream(EnvState* s, int fd) {
  auto it = s->streams.find(fd);
  if (it == s->streams.end()) return;
  StreamFd* f = it->second;
  s->streams.erase(it);
  Delete(f);
}

void FreeStreams(EnvState* s) {
  std::unordered_map<int, StreamFd*> all;
  all.swap(s->streams);
  for (auto& entry : all) Delete(entry.second);
}

void InitStream(Napi::Env env, Napi::Object exports) {
  Napi::Object stream = Napi::Object::New(env);
  stream.Set("socketpair", Napi::Function::New(env, Socketpair, "socketpair"));
  stream.Set("sendPacket", Napi::Function::New(env, SendPacket, "sendPacket"));
  stream.Set("flushPending", Napi::Function::New(env, FlushPending, "flushPending"));
  stream.Set("hasPending", Napi::Function::New(env, HasPending, "hasPending"));
  stream.Set("recvPackets", Napi::Function::New(env, RecvPackets, "recvPackets"));
  stream.Set("hasPartial", Napi::Function::New(env, HasPartial, "hasPartial"));
  stream.Set("listen", Napi::Function::New(env, Listen, "listen"));
  stream.Set("accept", Napi::Function::New(env, Accept, "accept"));
  stream.Set("connect", Napi::Function::New(env, Connect, "connect"));
  stream.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  stream.Set("shmCreate", Napi::Function::New(env, ShmCreate, "shmCreate"));
  stream.Set("readAll", Napi::Function::New(env, ReadAll, "readAll"));
  stream.Set("accessMode", Napi::Function::New(env, AccessMode, "accessMode"));
  stream.Set("stats", Napi::Function::New(env, Stats, "stats"));
  // This platform's errno values, negated as the functions above return them.
  Napi::Object errnos = Napi::Object::New(env);
  errnos.Set("EAGAIN", Napi::Number::New(env, -EAGAIN));
  errnos.Set("EPIPE", Napi::Number::New(env, -EPIPE));
  errnos.Set("ECONNRESET", Napi::Number::New(env, -ECONNRESET));
  errnos.Set("EMSGSIZE", Napi::Number::New(env, -EMSGSIZE));
  errnos.Set("ENOBUFS", Napi::Number::New(env, -ENOBUFS));
  stream.Set("errno", errnos);
  stream.Set("headerBytes", Napi::Number::New(env, static_cast<double>(kHeaderBytes)));
  stream.Set("maxPayloadBytes", Napi::Number::New(env, static_cast<double>(kMaxPayloadBytes)));
  exports.Set("stream", stream);
}

}  // namespace eic
