// Portable AF_UNIX sockets (Linux and macOS): close-on-exec and non-blocking set-up where the
// atomic flags are missing, the one-shot server's listen/accept/connect for both transports, and
// the stream transport's socketpair and peer credentials. Every function runs on the JS thread
// of the environment that calls it.
//
// Close-on-exec race (platforms without SOCK_CLOEXEC / accept4, i.e. macOS): sockets are created
// and accepted without FD_CLOEXEC, which is set by fcntl right after. A fork+exec by another
// thread of the process in between (a worker, a native thread; not this JS thread, which is busy
// here) hands the new descriptor to the child. libuv's uv_spawn on macOS uses posix_spawn with
// POSIX_SPAWN_CLOEXEC_DEFAULT, which closes it anyway; other code that forks does not. On Linux
// the atomic flags are used and there is no race. (stream.cc and shm.cc have the same race for
// received descriptors and shm_open objects.)
//
// SIGPIPE: MSG_NOSIGNAL where it exists; else SO_NOSIGPIPE on every socket made here (a socket
// received from a peer may lack it, but Node ignores SIGPIPE process-wide, so a write to a closed
// peer still fails with EPIPE).
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <stdint.h>

#include <string>

namespace eic {

// ---- descriptor set-up where atomic flags are missing (declared in common.h)

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

namespace {

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

// The one-shot server's AF_UNIX sockets of `type` (SOCK_SEQPACKET, SOCK_STREAM): a listener
// bound to `path` (backlog 1, non-blocking), the next connection (non-blocking) or -EAGAIN, a
// connected socket (blocking connect, then non-blocking). Every descriptor is close-on-exec and
// registered; errors throw, errno-named.
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

// The socket type (SOCK_STREAM, SOCK_SEQPACKET) a listen/connect function was made for.
int TypeOf(const Napi::CallbackInfo& info) { return static_cast<int>(reinterpret_cast<intptr_t>(info.Data())); }

Napi::Value Listen(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), UnixListen(info.Env(), TypeOf(info), ArgPath(info, 0)));
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), UnixAccept(info.Env(), ArgFd(info, 0)));
}

Napi::Value Connect(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), UnixConnect(info.Env(), TypeOf(info), ArgPath(info, 0)));
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

}  // namespace

void InitUnixServer(Napi::Env env, Napi::Object target, int type) {
  void* data = reinterpret_cast<void*>(static_cast<intptr_t>(type));
  target.Set("listen", Napi::Function::New(env, Listen, "listen", data));
  target.Set("accept", Napi::Function::New(env, Accept, "accept"));
  target.Set("connect", Napi::Function::New(env, Connect, "connect", data));
  target.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
}

void InitStreamSockets(Napi::Env env, Napi::Object stream) {
  stream.Set("socketpair", Napi::Function::New(env, Socketpair, "socketpair"));
  InitUnixServer(env, stream, SOCK_STREAM);
}

}  // namespace eic
