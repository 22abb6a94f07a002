// The Linux SOCK_SEQPACKET transport: socket pairs, packets with SCM_RIGHTS, socket
// neutralization and peer checks (the one-shot server's listen, accept, connect and peer
// credentials come from sockets.cc, shared with the stream transport). Linux only:
// macOS has no AF_UNIX SOCK_SEQPACKET (its header defines the constant, socket() fails), and
// this file also relies on SOCK_CLOEXEC, MSG_CMSG_CLOEXEC, accept4, MSG_NOSIGNAL, POLLRDHUP,
// SO_PEERCRED and SO_PASS*; binding.gyp builds it on Linux only, src/native/stream.cc is the
// portable transport. Every function runs on the JS thread of the environment that calls it.
#if !defined(__linux__)
#error "seqpacket.cc is Linux-only (binding.gyp leaves it out elsewhere; stream.cc is the portable transport)"
#endif

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

namespace eic {
namespace {

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

// Whether the next packet's descriptors fit in `room` slots: 1 yes, 0 no, or -errno.
// MSG_PEEK installs duplicates of the descriptors (scm_fp_dup), closed at once. With room 0 there
// is no control buffer: the kernel installs nothing and reports MSG_CTRUNC for any descriptor (and
// for SO_PASSCRED/SO_PASSPIDFD/SO_PASSSEC, so such a socket ends a batch at every packet: slower,
// never wrong). Otherwise the buffer has room for the control messages the kernel writes before
// the rights (credentials, security label), then for exactly `room` descriptors, then a pidfd:
// any of the first ones left out lets the kernel install more than `room` descriptors, which
// then reads as "does not fit", as it should.
int PeekFdsFit(int fd, size_t room) {
  ControlBuffer ctrl;
  struct msghdr msg = {};
  room = std::min(room, static_cast<size_t>(kMaxFdsPerPacket));
  if (room > 0) {
    msg.msg_control = ctrl.bytes;
    msg.msg_controllen = CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(kSecurityLabelRoom) + CMSG_LEN(sizeof(int) * room) +
                         CMSG_SPACE(sizeof(int));
  }
  ssize_t r;
  do {
    r = recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  if (room == 0) return (msg.msg_flags & MSG_CTRUNC) ? 0 : 1;
  int rights = ForEachControlFd(&msg, [](int) { return false; });
  return static_cast<size_t>(rights) <= room ? 1 : 0;
}

Napi::Value Socketpair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) ThrowErrno(env, errno, "socketpair");
  RegisterFds(env, sv, 2, FdOrigin::kUnixSocket);
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, sv[0]));
  pair.Set(1u, Napi::Number::New(env, sv[1]));
  return pair;
}

// neutralizeSocket(fd): clears the options that make every read of the socket carry more than
// the sender's bytes and descriptors: SO_PASSCRED (SCM_CREDENTIALS), SO_PASSPIDFD (SCM_PIDFD, a
// new descriptor per read, Linux 6.5+) and SO_PASSSEC (SCM_SECURITY), and sets SO_PASSRIGHTS
// back to 1 (Linux 6.16+: 0 makes every sender's descriptors fail with EPERM). For sockets a peer
// hands over: whoever else holds the socket can set them again, so the receive paths stay safe
// without this (they close every control-message descriptor); this only keeps them cheap.
// Errors of kernels or families without an option (ENOPROTOOPT, EINVAL, EOPNOTSUPP) are
// ignored; any other (EBADF, ENOTSOCK) throws.
Napi::Value NeutralizeSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  static const struct {
    int option;
    int value;
  } kOptions[] = {{SO_PASSCRED, 0}, {SO_PASSPIDFD, 0}, {SO_PASSSEC, 0}, {SO_PASSRIGHTS, 1}};
  for (const auto& o : kOptions) {
    if (setsockopt(fd, SOL_SOCKET, o.option, &o.value, sizeof o.value) == 0) continue;
    int err = errno;
    if (err == ENOPROTOOPT || err == EINVAL || err == EOPNOTSUPP) continue;
    ThrowErrno(env, err, "setsockopt");
  }
  return env.Undefined();
}

// sendmsg(fd, msg) without waiting, EINTR retried: the byte count, or -errno for EAGAIN, EPIPE,
// ECONNRESET, EMSGSIZE and ENOBUFS; any other errno throws.
Napi::Value SendmsgResult(napi_env env, int fd, struct msghdr* msg) {
  ssize_t r;
  do {
    r = sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  napi_value result;
  if (r < 0) {
    int err = errno;
    switch (err) {
      case EAGAIN:
      case EPIPE:
      case ECONNRESET:
      case EMSGSIZE:
      case ENOBUFS:
        napi_create_int32(env, -err, &result);
        return Napi::Value(env, result);
      default:
        ThrowErrno(env, err, "sendmsg");
    }
  }
  napi_create_double(env, static_cast<double>(r), &result);
  return Napi::Value(env, result);
}

Napi::Value SendPacket(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  Iovecs iovecs(env, info[1], false, "parts must be an array of 0 to 1024 typed arrays");
  struct iovec* iov = iovecs.data();
  uint32_t count = iovecs.count();
  struct msghdr msg = {};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  ControlBuffer ctrl;
  int fds[kMaxFdsPerPacket];
  SetRights(&msg, &ctrl, fds, ArgFdList(env, info[2], fds));

  return SendmsgResult(env, fd, &msg);
}

// The send binding of this thread (bindSend): a scratch the JS side builds small packets in
// (src/main/framing/send.ts), so that sendBound takes no typed array (no array element read, no
// typed-array info) per packet. One per thread; `env` tells whose it is.
struct SendBinding {
  napi_env env = nullptr;
  napi_ref ref = nullptr;
  uint8_t* data = nullptr;
  size_t length = 0;
  int32_t id = 0;
};
thread_local SendBinding tSend;
// Ids of this thread's send bindings (two copies of the library on one thread, say its ESM and
// CommonJS builds, each bind their own scratch: an id tells whose binding is current).
thread_local int32_t tSendIds = 0;

// bindSend(scratch: Uint8Array): what sendBound sends from on this thread from now on (kept alive
// until the next call). Returns the binding's id (> 0), which sendBound takes.
Napi::Value BindSend(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  size_t length = 0;
  uint8_t* data = GetUint8Array(env, info[0], &length, "scratch must be a Uint8Array");
  napi_ref ref;
  if (napi_create_reference(env, info[0], 1, &ref) != napi_ok) throw Napi::Error::New(env, "bindSend: napi_create_reference failed");
  SendBinding& old = tSend;
  // A binding of another environment (one that ended on this thread) is not ours to release.
  if (old.env == env && old.ref != nullptr) napi_delete_reference(env, old.ref);
  old.env = env;
  old.ref = ref;
  old.data = data;
  old.length = length;
  tSendIds = tSendIds == INT32_MAX ? 1 : tSendIds + 1;
  old.id = tSendIds;
  return Napi::Number::New(info.Env(), old.id);
}

// sendBound(fd, id, length, fds): sendPacket(fd, [scratch.subarray(0, length)], fds) with this
// thread's binding (bindSend): the same results and errors; -ESTALE (nothing sent) when `id` is
// not the current binding's (another bindSend came since: bind again). Throws RangeError for a
// length outside [1, scratch.length].
Napi::Value SendBound(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  const SendBinding& b = tSend;
  int id = ArgInt(info, 1, 0, INT32_MAX, "sendBound: id must be an integer >= 0");
  if (b.env != env || b.data == nullptr || id != b.id) return Napi::Number::New(env, -ESTALE);
  int length = ArgInt(info, 2, 1, static_cast<int>(std::min<size_t>(b.length, INT_MAX)), "sendBound: length must be an integer from 1 to the scratch's length");
  struct iovec iov = {b.data, static_cast<size_t>(length)};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ControlBuffer ctrl;
  int fds[kMaxFdsPerPacket];
  SetRights(&msg, &ctrl, fds, ArgFdList(env, info[3], fds));
  return SendmsgResult(env, fd, &msg);
}

// Runs on the JS thread, right after recvmsg: stores up to `room` of the SCM_RIGHTS descriptors
// in `out` and registers them (owned from this moment), closes the rest and every descriptor of
// any other control message type (ForEachControlFd), and adds the PACKET_* flags of the message
// to `flags`. Returns how many were stored.
int TakeFds(napi_env env, struct msghdr* msg, int32_t* out, size_t room, int* flags) {
  int got = 0;
  bool dropped = false;
  ForEachControlFd(msg, [&](int fd) {
    if (static_cast<size_t>(got) >= room) {
      dropped = true;
      return false;
    }
    out[got++] = fd;
    return true;
  });
  RegisterFds(env, out, got);
  if (dropped) *flags |= kPacketCtruncated;
  if (msg->msg_flags & MSG_TRUNC) *flags |= kPacketTruncated;
  if (msg->msg_flags & MSG_CTRUNC) *flags |= kPacketCtruncated;
  return got;
}

// recvPackets(fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block?): packets
// land directly in the caller's arena, with no Buffer allocated and no copy (PacketBatch).
}  // namespace

// The body of recvPackets without JavaScript arguments or exceptions, also called by a Poller
// that reads before it calls back (channel.cc, Poller.Fire): the count of packets (> 0), 0 at end
// of file, -EAGAIN, another -errno of recvmsg, or kRecvFdsDoNotFit. Writes meta[0] and meta[1].
int RecvPacketsRaw(napi_env env, const RecvArgs& args) {
  const int fd = args.fd;
  // The first recvmsg may go without MSG_DONTWAIT, so it waits for a packet when the file is in
  // blocking mode (SetBlocking) and fails with EAGAIN at once when it is not: one system call
  // instead of poll + recvmsg for a blocking receive.
  const bool block = args.block;
  PacketBatch batch(args);
  ControlBuffer ctrl;
  bool eof = false;
  while (!batch.full() && batch.roomForAnother()) {
    size_t room = batch.fdsRoom();
    if (room < static_cast<size_t>(kMaxFdsPerPacket)) {
      // Only the first packet may be peeked with descriptors installed; later ones just stop
      // the batch when they carry any.
      int fit = PeekFdsFit(fd, batch.count() == 0 ? room : 0);
      if (fit == -EAGAIN) break;
      if (fit == 0) {
        if (batch.count() == 0) return kRecvFdsDoNotFit;
        break;
      }
    }
    struct iovec iov = {batch.at(), static_cast<size_t>(args.maxPacketBytes)};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl.bytes;
    msg.msg_controllen = sizeof ctrl.bytes;
    ssize_t r = RecvmsgRetrying(fd, &msg, (block && batch.count() == 0 ? 0 : MSG_DONTWAIT) | MSG_CMSG_CLOEXEC);
    if (r < 0) {
      if (r == -EAGAIN || batch.count() > 0) break;
      return static_cast<int>(r);
    }
    int flags = 0;
    int got = TakeFds(env, &msg, batch.fdsAt(), room, &flags);
    // SOCK_SEQPACKET reads 0 both for an empty packet and at end-of-file.
    if (r == 0 && got == 0 && flags == 0 && PollHangUp(fd) == 1) {
      eof = true;
      break;
    }
    batch.Add(static_cast<size_t>(r), got, flags);
  }
  args.meta[0] = batch.count();
  args.meta[1] = eof ? 1 : 0;
  return batch.count() > 0 ? batch.count() : eof ? 0 : -EAGAIN;
}

namespace {

Napi::Value RecvPackets(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int r = RecvPacketsRaw(env, ParseRecvArgs(info));
  if (r == kRecvFdsDoNotFit) ThrowRangeError(env, "the next packet carries more descriptors than fdsOut can hold");
  if (r < 0 && r != -EAGAIN) ThrowErrno(env, -r, "recvmsg");
  return Napi::Number::New(env, r);
}

// Runs on the JS thread. One recvmsg scattered over caller-provided Uint8Arrays (the rest of a
// fragmented message goes straight to its final buffers). meta: [fdCount, flags, eof].
Napi::Value RecvInto(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  Iovecs iovecs(env, info[1], true, "iovs must be an array of 1 to 1024 Uint8Arrays");
  if (iovecs.count() == 0) ThrowRangeError(env, "iovs must be an array of 1 to 1024 Uint8Arrays");
  struct iovec* iov = iovecs.data();
  uint32_t count = iovecs.count();
  int32_t* fdsOut;
  size_t fdsCapacity;
  int32_t* meta;
  size_t metaLength;
  GetInt32Array(env, info[2], &fdsOut, &fdsCapacity, "fdsOut must be an Int32Array");
  GetInt32Array(env, info[3], &meta, &metaLength, "meta must be an Int32Array");
  if (fdsCapacity < static_cast<size_t>(kMaxFdsPerPacket) || metaLength < 3) {
    ThrowRangeError(env, "fdsOut must hold 253 entries and meta 3");
  }
  ControlBuffer ctrl;
  struct msghdr msg = {};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  // A peek takes no control data: descriptors are installed only by the real read (without
  // room for them the kernel drops its peeked copies).
  bool peek = info.Length() > 4 && info[4].ToBoolean().Value();
  if (!peek) {
    msg.msg_control = ctrl.bytes;
    msg.msg_controllen = sizeof ctrl.bytes;
  }
  ssize_t r = RecvmsgRetrying(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | (peek ? MSG_PEEK : 0));
  if (r == -EAGAIN) return Napi::Number::New(env, -EAGAIN);
  if (r < 0) ThrowErrno(env, static_cast<int>(-r), "recvmsg");
  int flags = 0;
  int got = TakeFds(env, &msg, fdsOut, fdsCapacity, &flags);
  meta[0] = got;
  meta[1] = flags;
  meta[2] = (r == 0 && got == 0 && flags == 0 && PollHangUp(fd) == 1) ? 1 : 0;
  napi_value result;
  napi_create_double(env, static_cast<double>(r), &result);
  return Napi::Value(env, result);
}

// peekFd(fd): the first descriptor of the next packet, received by MSG_PEEK: the packet and its
// descriptors stay queued for whoever reads it later; the caller owns the returned duplicate
// (registered). -1 when the next packet carries no descriptor, -errno (EAGAIN: no packet).
Napi::Value PeekFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  ControlBuffer ctrl;
  char byte;
  struct iovec iov = {&byte, 1};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctrl.bytes;
  msg.msg_controllen = sizeof ctrl.bytes;
  ssize_t r;
  do {
    r = recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Napi::Number::New(env, -errno);
  int first = -1;
  ForEachControlFd(&msg, [&](int got) {
    if (first >= 0) return false;
    first = got;
    return true;
  });
  if (first >= 0) RegisterFd(env, first);
  return Napi::Number::New(env, first);
}

// The inode of the peer of the AF_UNIX socket with inode `ino`, from NETLINK_SOCK_DIAG
// (UDIAG_SHOW_PEER), or 0 when the kernel cannot tell (no unix_diag, not connected). The kernel
// answers a diag request while send() runs, so the read never waits.
uint64_t UnixPeerInode(uint64_t ino) {
  // Not in the descriptor table: opened and closed here, on this thread, never seen by JS.
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return 0;
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{nl};
  struct {
    struct nlmsghdr nlh;
    struct unix_diag_req req;
  } msg = {};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = AF_UNIX;
  msg.req.udiag_states = ~0u;
  msg.req.udiag_ino = static_cast<__u32>(ino);
  msg.req.udiag_show = UDIAG_SHOW_PEER;
  msg.req.udiag_cookie[0] = ~0u;  // INET_DIAG_NOCOOKIE: look up by inode alone
  msg.req.udiag_cookie[1] = ~0u;
  if (send(nl, &msg, sizeof msg, 0) != static_cast<ssize_t>(sizeof msg)) return 0;
  alignas(struct nlmsghdr) char buf[4096];
  ssize_t n;
  do {
    n = recv(nl, buf, sizeof buf, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  for (struct nlmsghdr* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) return 0;  // NLMSG_ERROR, NLMSG_DONE
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg))) return 0;
    struct unix_diag_msg* m = reinterpret_cast<struct unix_diag_msg*>(NLMSG_DATA(h));
    if (m->udiag_ino != static_cast<__u32>(ino)) continue;
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
    for (struct rtattr* a = reinterpret_cast<struct rtattr*>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(__u32)) {
        __u32 peer;
        memcpy(&peer, RTA_DATA(a), sizeof peer);
        return peer;
      }
    }
  }
  return 0;
}

// isSocketPeer(a, b): true when AF_UNIX socket `b` is the peer of socket `a` (they are the two
// ends of one connection, e.g. a channel's sender and its own receiver), false when it is not,
// null when the kernel cannot tell (no unix_diag).
Napi::Value IsSocketPeer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int a = ArgFd(info, 0);
  int b = ArgFd(info, 1);
  struct stat sa, sb;
  if (fstat(a, &sa) != 0) ThrowErrno(env, errno, "fstat");
  if (fstat(b, &sb) != 0) ThrowErrno(env, errno, "fstat");
  if (!S_ISSOCK(sa.st_mode) || !S_ISSOCK(sb.st_mode)) return Napi::Boolean::New(env, false);
  uint64_t peer = UnixPeerInode(sa.st_ino);
  if (peer == 0) return env.Null();
  return Napi::Boolean::New(env, peer == sb.st_ino);
}

}  // namespace

void InitSeqpacket(Napi::Env env, Napi::Object exports) {
  exports.Set("socketpair", Napi::Function::New(env, Socketpair, "socketpair"));
  exports.Set("sendPacket", Napi::Function::New(env, SendPacket, "sendPacket"));
  exports.Set("bindSend", Napi::Function::New(env, BindSend, "bindSend"));
  exports.Set("sendBound", Napi::Function::New(env, SendBound, "sendBound"));
  exports.Set("recvPackets", Napi::Function::New(env, RecvPackets, "recvPackets"));
  exports.Set("recvInto", Napi::Function::New(env, RecvInto, "recvInto"));
  exports.Set("peekFd", Napi::Function::New(env, PeekFd, "peekFd"));
  InitUnixServer(env, exports, SOCK_SEQPACKET);
  exports.Set("neutralizeSocket", Napi::Function::New(env, NeutralizeSocket, "neutralizeSocket"));
  exports.Set("isSocketPeer", Napi::Function::New(env, IsSocketPeer, "isSocketPeer"));
}

}  // namespace eic
