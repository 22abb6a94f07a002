// Closing descriptors without blocking the JS thread, and errno names.
//
// close(2) can wait on someone else: a TCP socket with SO_LINGER and unsent data waits up to its
// linger time; a FUSE or NFS file sends FLUSH to its server on every close (filp_close), and a
// FUSE server may never answer; a tty drains its output. A peer chooses the descriptors it sends,
// so the addon closes on the calling (JS) thread only what cannot block, and hands everything else
// to one background thread (the closer), which is process-wide: every environment (main thread,
// workers) shares it, it starts on first use, it is never joined and its state is never freed, so
// neither a worker's teardown nor static destruction at exit can race it.
//
// A queued descriptor keeps its number until the closer really closes it, so the number cannot
// be reused (and closed a second time by mistake) meanwhile; it is already out of the
// environment's table, so nothing in JS can use or close it again.
//
// Which closes may wait is system-specific (CloseMayBlock): Linux answers from statx
// (AT_STATX_DONT_SYNC), SIOCINQ and /proc/self/fdinfo; macOS has none of them, so its version is
// more conservative (anything but pipes, shared memory and AF_UNIX sockets with nothing queued
// goes to the closer). The queue, the thread and the errno names are shared.
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/sockios.h>
#endif

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#if defined(__linux__) && !defined(F_GET_SEALS)
#define F_GET_SEALS 1034
#endif

namespace eic {
namespace {

struct CloseQueue {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<int> fds;
  bool started = false;
};

// Heap-allocated and never freed: the closer thread may still wait on it while the process exits.
CloseQueue& Queue() {
  static CloseQueue* q = new CloseQueue;
  return *q;
}

// Descriptors queued or being closed by the closer.
std::atomic<size_t> g_pending{0};

// The closer thread. Runs only close(2): no JS, no environment state, no allocation.
void CloserMain() {
  CloseQueue& q = Queue();
  for (;;) {
    int fd;
    {
      std::unique_lock<std::mutex> lock(q.mutex);
      q.ready.wait(lock, [&] { return !q.fds.empty(); });
      fd = q.fds.front();
      q.fds.pop_front();
    }
    // Linux and macOS release the number even when close fails (EINTR, EIO): never retried.
    close(fd);
    g_pending.fetch_sub(1, std::memory_order_release);
  }
}

// Caller holds q.mutex. Starting a thread can fail (EAGAIN: thread limit); the descriptors then
// stay queued (open) and the next EnqueueClose tries again, rather than blocking the caller.
void StartCloserLocked(CloseQueue& q) {
  if (q.started) return;
  try {
    std::thread(CloserMain).detach();
    q.started = true;
  } catch (...) {
  }
}

void EnqueueClose(int fd) {
  CloseQueue& q = Queue();
  g_pending.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(q.mutex);
  q.fds.push_back(fd);
  StartCloserLocked(q);
  q.ready.notify_one();
}

// Whether a listening socket is readable, i.e. a connection waits to be accepted (and its queue
// may hold descriptors); an error counts as readable.
bool ListenerReadable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  return r != 0;
}

#ifdef __linux__

// The number of descriptors queued in an AF_UNIX socket's receive queue (the "scm_fds:" line of
// /proc/self/fdinfo/<fd>), or -1 when it cannot be read.
int QueuedScmFds(int fd) {
  char path[48];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  int f = open(path, O_RDONLY | O_CLOEXEC);
  if (f < 0) return -1;
  char text[1024];
  ssize_t n;
  do {
    n = read(f, text, sizeof text - 1);
  } while (n < 0 && errno == EINTR);
  close(f);
  if (n <= 0) return -1;
  text[n] = '\0';
  const char* line = strstr(text, "scm_fds:");
  if (line == nullptr) return -1;
  return atoi(line + 8);
}

// Whether closing this AF_UNIX socket might release descriptors queued on it.
//
// Closing the last reference to an AF_UNIX socket frees the packets still queued on it, and with
// them the descriptors they carry. The final fput of such a descriptor runs as task work of *this*
// thread on its way back from close(2) (a lingering TCP socket, for example), and so does that of
// connections still waiting to be accepted on a listening socket. So a socket goes to the closer
// unless nothing it holds can carry a descriptor. A peer that sends one between this check and the
// close wins a race of a few microseconds (documented limit).
bool UnixSocketMayHoldFds(int fd) {
  int queued = 0;
  if (ioctl(fd, SIOCINQ, &queued) != 0) {
    // EBADF: the number names nothing (closed behind the addon's back); close fails at once. It
    // must not go to the closer, which could close whatever reuses the number by then.
    if (errno == EBADF) return false;
    if (errno != EINVAL) return QueuedScmFds(fd) != 0;
    // Kernel quirk: SIOCINQ refuses a listening socket (unix_inq_len). Readable means a
    // connection waits to be accepted, and its queue may hold descriptors.
    return ListenerReadable(fd);
  }
  // Fast path: an empty receive queue. SIOCINQ counts bytes, so a zero-length packet (which can
  // carry descriptors) needs the peek: EAGAIN is the only answer that proves the queue empty.
  if (queued == 0) {
    struct msghdr msg = {};
    ssize_t r;
    do {
      r = recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EAGAIN) return false;
  }
  // Data queued, or end-of-file (the peer closed, often with nothing queued): the kernel counts
  // the descriptors queued on the socket (scm_fds in /proc/self/fdinfo, Linux 5.10+). Unknown
  // (older kernel, no /proc) counts as "may hold some".
  return QueuedScmFds(fd) != 0;
}

}  // namespace

// Everything here answers from the open file itself (its inode's type and device numbers, and
// F_GET_SEALS, which only asks whether its file system supports seals), never from state that
// changes while the descriptor is open: fdInfo records the answer for received descriptors
// (FdOrigin::kCloseCannotWait) and the close then trusts it.
bool FileCloseCannotWait(int fd, mode_t mode, unsigned devMajor, unsigned rdevMajor) {
  switch (mode & S_IFMT) {
    case 0:        // anonymous inodes: eventfd, epoll, timerfd, signalfd, pidfd...
    case S_IFIFO:  // pipes and FIFOs
      return true;
    case S_IFCHR:
      // The memory devices (major 1: /dev/null, zero, full, random, urandom, kmsg) release
      // nothing that waits; any other device may (a tty drains its output first).
      return rdevMajor == 1;
    case S_IFREG:
    case S_IFDIR:
      // A file system on a block device (ext4, xfs... on /dev/vda) flushes nothing to anyone on
      // close: its device number has a major. FUSE, NFS, CIFS, 9p, overlayfs, btrfs and tmpfs
      // use anonymous device numbers (major 0); of those, shared memory (memfd, tmpfs,
      // hugetlbfs) is recognised by F_GET_SEALS and closes at once, anything else may flush to a
      // server (FUSE FLUSH, NFS) and goes to the closer. (fuseblk, FUSE on a block device, needs
      // root to mount.)
      if (devMajor != 0) return true;
      return (mode & S_IFMT) == S_IFREG && fcntl(fd, F_GET_SEALS) >= 0;
    default:  // sockets (decided at close time), block devices, anything else
      return false;
  }
}

namespace {

// Whether close(fd) might wait on another process or on hardware. Every check here is itself
// non-blocking: getsockopt, ioctl(SIOCINQ), a MSG_PEEK|MSG_DONTWAIT recvmsg and F_GET_SEALS never
// reach a file system, and statx with AT_STATX_DONT_SYNC answers from the inode cache (FUSE and
// NFS send no request). A descriptor fdInfo already judged (kCloseCannotWait) needs no statx.
bool CloseMayBlock(int fd, FdOrigin origin) {
  if (origin == FdOrigin::kSharedMemory || origin == FdOrigin::kCloseCannotWait) return false;
  if (origin == FdOrigin::kUnixSocket) return UnixSocketMayHoldFds(fd);
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx) != 0) {
    return errno != EBADF;  // EBADF: close fails at once
  }
  if ((stx.stx_mode & S_IFMT) == S_IFSOCK) {
    // TCP and friends honour SO_LINGER; AF_UNIX ignores it.
    int domain = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return true;
    return domain != AF_UNIX || UnixSocketMayHoldFds(fd);
  }
  return !FileCloseCannotWait(fd, stx.stx_mode, stx.stx_dev_major, stx.stx_rdev_major);
}

#else  // !__linux__: macOS and the BSDs

// Whether closing this AF_UNIX socket might release descriptors queued on it (XNU disposes of
// them in unp_detach, on the closing thread, like Linux). A listening socket may hold
// connections that wait to be accepted, whose queues may hold descriptors: readable means one
// waits. Otherwise only a non-blocking MSG_PEEK that fails with EAGAIN proves the receive queue
// empty (a message of descriptors alone has no bytes, so FIONREAD cannot tell). There is no
// count of queued descriptors to consult as on Linux, so end-of-file or any data queued counts as
// "may hold some". A peer that sends one between this check and the close wins a race of a few
// microseconds (documented limit, as on Linux).
bool UnixSocketMayHoldFds(int fd) {
  int accepting = 0;
  socklen_t len = sizeof accepting;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting != 0) {
    return ListenerReadable(fd);
  }
  char byte;
  struct iovec iov = {&byte, 1};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t r;
  do {
    r = recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  return !(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

}  // namespace

// macOS: only what fstat's type proves (see CloseMayBlock below): files, directories and devices
// always go to the closer.
bool FileCloseCannotWait(int fd, mode_t mode, unsigned devMajor, unsigned rdevMajor) {
  (void)fd;
  (void)devMajor;
  (void)rdevMajor;
  switch (mode & S_IFMT) {
    case 0:        // POSIX shared memory (pshm_stat sets no file type), kqueue
    case S_IFIFO:  // pipes and FIFOs
      return true;
    default:
      return false;
  }
}

namespace {

// Whether close(fd) might wait on another process or on hardware. fstat (there is no statx) of a
// socket, a pipe or a shared memory object answers from kernel state; of a vnode it may ask a
// network file system's server, the same risk fdInfo already takes for every received
// descriptor on macOS. Files and directories always go to the closer: there is no cheap,
// non-blocking way to tell a local file system from NFS/SMB/FUSE (fstatfs may ask the server).
bool CloseMayBlock(int fd, FdOrigin origin) {
  if (origin == FdOrigin::kSharedMemory || origin == FdOrigin::kCloseCannotWait) return false;
  if (origin == FdOrigin::kUnixSocket) return UnixSocketMayHoldFds(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) return errno != EBADF;  // EBADF: close fails at once
  if ((st.st_mode & S_IFMT) == S_IFSOCK) {
    // TCP and friends honour SO_LINGER; AF_UNIX ignores it. No SO_DOMAIN: the family of the
    // socket's own address.
    struct sockaddr_storage self;
    socklen_t selfLength = sizeof self;
    if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&self), &selfLength) != 0 ||
        selfLength < offsetof(struct sockaddr_storage, ss_family) + sizeof(sa_family_t)) {
      return true;
    }
    return self.ss_family != AF_UNIX || UnixSocketMayHoldFds(fd);
  }
  return !FileCloseCannotWait(fd, st.st_mode, 0, 0);
}

#endif  // __linux__

Napi::Value PendingClosesFn(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(PendingCloses()));
}

}  // namespace

int CloseQuietly(int fd, FdOrigin origin) {
  if (fd < 0) return EBADF;
  if (CloseMayBlock(fd, origin)) {
    EnqueueClose(fd);
    return 0;
  }
  if (close(fd) != 0 && errno != EINTR) return errno;
  return 0;
}

size_t PendingCloses() { return g_pending.load(std::memory_order_acquire); }

// errno values by name: the union of the names of Linux's <errno.h> and macOS's <sys/errno.h>,
// those of one system only in its #if block. A table scanned in order, not a switch: names that
// share a value on one system (Linux: EOPNOTSUPP and ENOTSUP, EWOULDBLOCK and EAGAIN) would be
// duplicate case labels; the first listed wins (Linux says EOPNOTSUPP, as its kernel does). Only
// error paths call ErrnoName, so a scan of ~150 entries costs nothing that matters.
struct ErrnoEntry {
  int value;
  const char* name;
};
#define EIC_ERRNO(name) {name, #name},
const ErrnoEntry kErrnoNames[] = {
    EIC_ERRNO(EPERM) EIC_ERRNO(ENOENT) EIC_ERRNO(ESRCH) EIC_ERRNO(EINTR) EIC_ERRNO(EIO)
    EIC_ERRNO(ENXIO) EIC_ERRNO(E2BIG) EIC_ERRNO(ENOEXEC) EIC_ERRNO(EBADF) EIC_ERRNO(ECHILD) EIC_ERRNO(EAGAIN)
    EIC_ERRNO(ENOMEM) EIC_ERRNO(EACCES) EIC_ERRNO(EFAULT) EIC_ERRNO(ENOTBLK) EIC_ERRNO(EBUSY) EIC_ERRNO(EEXIST)
    EIC_ERRNO(EXDEV) EIC_ERRNO(ENODEV) EIC_ERRNO(ENOTDIR) EIC_ERRNO(EISDIR) EIC_ERRNO(EINVAL) EIC_ERRNO(ENFILE)
    EIC_ERRNO(EMFILE) EIC_ERRNO(ENOTTY) EIC_ERRNO(ETXTBSY) EIC_ERRNO(EFBIG) EIC_ERRNO(ENOSPC) EIC_ERRNO(ESPIPE)
    EIC_ERRNO(EROFS) EIC_ERRNO(EMLINK) EIC_ERRNO(EPIPE) EIC_ERRNO(EDOM) EIC_ERRNO(ERANGE) EIC_ERRNO(EDEADLK)
    EIC_ERRNO(ENAMETOOLONG) EIC_ERRNO(ENOLCK) EIC_ERRNO(ENOSYS) EIC_ERRNO(ENOTEMPTY) EIC_ERRNO(ELOOP)
    EIC_ERRNO(ENOMSG) EIC_ERRNO(EIDRM) EIC_ERRNO(ENOSTR) EIC_ERRNO(ENODATA) EIC_ERRNO(ETIME) EIC_ERRNO(ENOSR)
    EIC_ERRNO(EREMOTE) EIC_ERRNO(ENOLINK) EIC_ERRNO(EPROTO) EIC_ERRNO(EMULTIHOP) EIC_ERRNO(EBADMSG)
    EIC_ERRNO(EOVERFLOW) EIC_ERRNO(EILSEQ) EIC_ERRNO(EUSERS) EIC_ERRNO(ENOTSOCK) EIC_ERRNO(EDESTADDRREQ)
    EIC_ERRNO(EMSGSIZE) EIC_ERRNO(EPROTOTYPE) EIC_ERRNO(ENOPROTOOPT) EIC_ERRNO(EPROTONOSUPPORT)
    EIC_ERRNO(ESOCKTNOSUPPORT) EIC_ERRNO(EOPNOTSUPP) EIC_ERRNO(EPFNOSUPPORT) EIC_ERRNO(EAFNOSUPPORT)
    EIC_ERRNO(EADDRINUSE) EIC_ERRNO(EADDRNOTAVAIL) EIC_ERRNO(ENETDOWN) EIC_ERRNO(ENETUNREACH) EIC_ERRNO(ENETRESET)
    EIC_ERRNO(ECONNABORTED) EIC_ERRNO(ECONNRESET) EIC_ERRNO(ENOBUFS) EIC_ERRNO(EISCONN) EIC_ERRNO(ENOTCONN)
    EIC_ERRNO(ESHUTDOWN) EIC_ERRNO(ETOOMANYREFS) EIC_ERRNO(ETIMEDOUT) EIC_ERRNO(ECONNREFUSED) EIC_ERRNO(EHOSTDOWN)
    EIC_ERRNO(EHOSTUNREACH) EIC_ERRNO(EALREADY) EIC_ERRNO(EINPROGRESS) EIC_ERRNO(ESTALE) EIC_ERRNO(EDQUOT)
    EIC_ERRNO(ECANCELED) EIC_ERRNO(EOWNERDEAD) EIC_ERRNO(ENOTRECOVERABLE)
#ifdef __linux__
    EIC_ERRNO(ECHRNG) EIC_ERRNO(EL2NSYNC) EIC_ERRNO(EL3HLT) EIC_ERRNO(EL3RST) EIC_ERRNO(ELNRNG) EIC_ERRNO(EUNATCH)
    EIC_ERRNO(ENOCSI) EIC_ERRNO(EL2HLT) EIC_ERRNO(EBADE) EIC_ERRNO(EBADR) EIC_ERRNO(EXFULL) EIC_ERRNO(ENOANO)
    EIC_ERRNO(EBADRQC) EIC_ERRNO(EBADSLT) EIC_ERRNO(EBFONT) EIC_ERRNO(ENONET) EIC_ERRNO(ENOPKG) EIC_ERRNO(EADV)
    EIC_ERRNO(ESRMNT) EIC_ERRNO(ECOMM) EIC_ERRNO(EDOTDOT) EIC_ERRNO(ENOTUNIQ) EIC_ERRNO(EBADFD) EIC_ERRNO(EREMCHG)
    EIC_ERRNO(ELIBACC) EIC_ERRNO(ELIBBAD) EIC_ERRNO(ELIBSCN) EIC_ERRNO(ELIBMAX) EIC_ERRNO(ELIBEXEC)
    EIC_ERRNO(ERESTART) EIC_ERRNO(ESTRPIPE) EIC_ERRNO(EUCLEAN) EIC_ERRNO(ENOTNAM) EIC_ERRNO(ENAVAIL)
    EIC_ERRNO(EISNAM) EIC_ERRNO(EREMOTEIO) EIC_ERRNO(ENOMEDIUM) EIC_ERRNO(EMEDIUMTYPE) EIC_ERRNO(ENOKEY)
    EIC_ERRNO(EKEYEXPIRED) EIC_ERRNO(EKEYREVOKED) EIC_ERRNO(EKEYREJECTED) EIC_ERRNO(ERFKILL) EIC_ERRNO(EHWPOISON)
#endif
#ifdef __APPLE__
    EIC_ERRNO(ENOTSUP) EIC_ERRNO(EPROCLIM) EIC_ERRNO(EBADRPC) EIC_ERRNO(ERPCMISMATCH) EIC_ERRNO(EPROGUNAVAIL)
    EIC_ERRNO(EPROGMISMATCH) EIC_ERRNO(EPROCUNAVAIL) EIC_ERRNO(EFTYPE) EIC_ERRNO(EAUTH) EIC_ERRNO(ENEEDAUTH)
    EIC_ERRNO(EPWROFF) EIC_ERRNO(EDEVERR) EIC_ERRNO(EBADEXEC) EIC_ERRNO(EBADARCH) EIC_ERRNO(ESHLIBVERS)
    EIC_ERRNO(EBADMACHO) EIC_ERRNO(ENOATTR) EIC_ERRNO(ENOPOLICY) EIC_ERRNO(EQFULL)
#endif
};
#undef EIC_ERRNO

const char* ErrnoName(int err) {
  for (const ErrnoEntry& e : kErrnoNames) {
    if (e.value == err) return e.name;
  }
  return nullptr;
}

void InitCloser(Napi::Env env, Napi::Object exports) {
  exports.Set("pendingCloses", Napi::Function::New(env, PendingClosesFn, "pendingCloses"));
}

}  // namespace eic
