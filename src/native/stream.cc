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
// Received descriptors lack FD_CLOEXEC for a moment where MSG_CMSG_CLOEXEC is missing (macOS):
// see the close-on-exec race in sockets.cc, which makes the sockets (socketpair, listen, accept,
// connect, peer credentials); shm.cc makes the shm_open objects (shmCreate, readAll, accessMode).
// Both add their functions to this transport's `stream` object.
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <string>
#include <vector>

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
// The largest payload a frame may carry: the typed layer's biggest packet, MAX_FRAGMENT_BYTES in
// src/main/framing.ts (1 MiB + 64 KiB, its 48-byte fragment header included), which is also the
// most a receiver reads (MAX_RECV_PACKET_BYTES). A larger frame would be accepted here and then
// put the receiving end out of step, so sendPacket refuses it (EMSGSIZE).
constexpr size_t kMaxPayloadBytes = (size_t{1} << 20) + (size_t{64} << 10);

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
  const uint32_t fdCount = ArgFdList(env, info[2], fds);
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
  SetRights(&msg, &ctrl, fds, fdCount);
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

// Why a stream went out of step (see DesyncText).
enum class Desync { kNone, kStrayFds, kTooManyFds, kControlTruncated, kFdCountMismatch, kTooLarge };

// One recvmsg of at most `len` bytes (len > 0) into `buf`, with room for every control message.
// Returns the byte count, 0 at end of file, or -errno. The SCM_RIGHTS descriptors it brings are
// appended to `fds` when that is given (close-on-exec, not registered); else (bytes that do not
// begin a header) they are closed and *why is set; so is it when more than 253 arrive or the
// kernel truncated the control data (MSG_CTRUNC). Every other descriptor a control message
// carries (SCM_PIDFD) is closed.
ssize_t ReadPiece(int fd, void* buf, size_t len, bool wait, std::vector<int>* fds, Desync* why) {
  ControlBuffer ctrl;
  struct iovec iov = {buf, len};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctrl.bytes;
  msg.msg_controllen = sizeof ctrl.bytes;
  ssize_t r = RecvmsgRetrying(fd, &msg, (wait ? 0 : MSG_DONTWAIT) | kRecvFlags);
  if (r < 0) return r;
  ForEachControlFd(&msg, [&](int got) {
    if (fds == nullptr || fds->size() >= static_cast<size_t>(kMaxFdsPerPacket)) {
      if (*why == Desync::kNone) *why = fds == nullptr ? Desync::kStrayFds : Desync::kTooManyFds;
      return false;
    }
#ifndef MSG_CMSG_CLOEXEC
    SetCloexec(got);
#endif
    fds->push_back(got);
    return true;
  });
  if ((msg.msg_flags & MSG_CTRUNC) != 0 && *why == Desync::kNone) *why = Desync::kControlTruncated;
  return r;
}

// What the MALFORMED error of a stream out of step says (the typed layer adds "malformed message
// from the peer: " before it). `f` is the frame being read, before it is cleared.
std::string DesyncText(Desync why, const StreamFd* f, int maxPacketBytes) {
  std::string what;
  switch (why) {
    case Desync::kFdCountMismatch:
      what = "a frame header announces " + std::to_string(f->fdCount) + " descriptor(s) but " + std::to_string(f->fds.size()) +
             " arrived with it (descriptor count mismatch)";
      break;
    case Desync::kTooLarge:
      what = "a frame header announces a payload of " + std::to_string(f->payloadBytes) + " bytes, larger than the " +
             std::to_string(maxPacketBytes) + " bytes a receiver reads (frame header invalid)";
      break;
    case Desync::kStrayFds:
      what = "descriptors arrived with bytes that do not begin a frame header";
      break;
    case Desync::kTooManyFds:
      what = "more than 253 descriptors arrived with one frame header";
      break;
    default:
      what = "the kernel dropped descriptors of a frame (MSG_CTRUNC; this process may be out of descriptors), so its "
             "descriptor count cannot be checked";
      break;
  }
  return "the stream socket is out of step: " + what +
         "; a byte stream cannot be resynchronised, so the channel is closed (nothing after this is read from it)";
}

// recvPackets(fd, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block?): the
// contract of the seqpacket transport's recvPackets (src/main/native.ts), over frames.
Napi::Value RecvPackets(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  const RecvArgs args = ParseRecvArgs(info);
  const int fd = args.fd;
  // With `block`, reads go without MSG_DONTWAIT until the first frame is whole: they wait when
  // the file is in blocking mode (setBlocking) and fail with EAGAIN at once when it is not.
  const bool block = args.block;
  PacketBatch batch(args);

  EnvState* s = State(env);
  StreamFd* kept = Find(s, fd);
  if (kept != nullptr && kept->broken) return batch.Finish(env, true);
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

  bool eof = false;
  Desync why = Desync::kNone;
  // Moves payload bytes read into the arena this call to the frame's own buffer, before
  // returning with the frame unfinished (the caller reuses the arena).
  auto savePartial = [&]() {
    if (!f->haveHeader || f->payload != nullptr || f->payloadGot == 0) return;
    f->payload = static_cast<uint8_t*>(malloc(f->payloadBytes));
    if (f->payload == nullptr) throw std::bad_alloc();
    memcpy(f->payload, batch.at(), f->payloadGot);
  };
  while (!batch.full()) {
    const bool wait = block && batch.count() == 0;
    if (!f->haveHeader) {
      if (f->headerGot == 0 && !batch.roomForAnother()) break;
      ssize_t r = ReadPiece(fd, f->header + f->headerGot, kHeaderBytes - f->headerGot, wait, f->headerGot == 0 ? &f->fds : nullptr, &why);
      if (why != Desync::kNone) break;
      if (r == 0) {
        eof = true;
        break;
      }
      if (r < 0) {
        if (r == -EAGAIN || batch.count() > 0) break;
        ThrowErrno(env, static_cast<int>(-r), "recvmsg");
      }
      f->headerGot += static_cast<uint32_t>(r);
      if (f->headerGot < kHeaderBytes) continue;
      f->haveHeader = true;
      f->payloadBytes = LoadLE32(f->header);
      f->fdCount = LoadLE32(f->header + 4);
      if (f->fdCount != f->fds.size()) {
        why = Desync::kFdCountMismatch;
        break;
      }
    }
    if (f->payloadBytes > static_cast<uint32_t>(args.maxPacketBytes)) {
      why = Desync::kTooLarge;
      break;
    }
    if (f->fdCount > batch.fdsRoom()) {
      if (batch.count() == 0) ThrowRangeError(env, "the next packet carries more descriptors than fdsOut can hold");
      break;
    }
    uint8_t* dst = f->payload != nullptr ? f->payload : batch.at();
    bool done = true;
    while (f->payloadGot < f->payloadBytes) {
      ssize_t r = ReadPiece(fd, dst + f->payloadGot, f->payloadBytes - f->payloadGot, wait, nullptr, &why);
      if (why != Desync::kNone) break;
      if (r == 0) {
        eof = true;
        break;
      }
      if (r < 0) {
        savePartial();
        if (r == -EAGAIN || batch.count() > 0) {
          done = false;
          break;
        }
        ThrowErrno(env, static_cast<int>(-r), "recvmsg");
      }
      f->payloadGot += static_cast<size_t>(r);
    }
    if (why != Desync::kNone || eof || !done) break;
    // Whole: deliver it at batch.at().
    if (f->payload != nullptr) memcpy(batch.at(), f->payload, f->payloadBytes);
    int got = static_cast<int>(f->fds.size());
    int32_t* out = batch.fdsAt();
    for (int i = 0; i < got; i++) out[i] = f->fds[i];
    f->fds.clear();
    RegisterFds(env, out, got);
    batch.Add(f->payloadBytes, got, 0);
    ClearRead(f);
  }
  if (why != Desync::kNone) {
    // Nothing read from this stream can be trusted any more: close what the frame holds, report
    // one packet flagged PACKET_DESYNC whose bytes are the addon's account of what happened (the
    // typed layer makes it one MALFORMED), then end of file. PACKET_TRUNCATED is set too, so that
    // a reader that knows only the seqpacket flags still refuses the packet. The loop stopped
    // before the batch was full, and the arena has room for maxPacketBytes at batch.at()
    // (roomForAnother held for this frame, or it is the first).
    std::string text = DesyncText(why, f, args.maxPacketBytes);
    size_t length = std::min(text.size(), static_cast<size_t>(args.maxPacketBytes));
    memcpy(batch.at(), text.data(), length);
    ClearRead(f);
    f->broken = true;
    batch.Add(length, 0, kPacketDesync | kPacketTruncated);
    eof = true;
  } else if (eof) {
    // A frame cut short by end of file is dropped, its descriptors closed.
    ClearRead(f);
  }
  return batch.Finish(env, eof);
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
  stream.Set("sendPacket", Napi::Function::New(env, SendPacket, "sendPacket"));
  stream.Set("flushPending", Napi::Function::New(env, FlushPending, "flushPending"));
  stream.Set("hasPending", Napi::Function::New(env, HasPending, "hasPending"));
  stream.Set("recvPackets", Napi::Function::New(env, RecvPackets, "recvPackets"));
  stream.Set("hasPartial", Napi::Function::New(env, HasPartial, "hasPartial"));
  InitStreamSockets(env, stream);
  InitStreamShm(env, stream);
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
