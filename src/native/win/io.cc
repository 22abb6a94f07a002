// Reading and writing messages on pipe ends, and the handles that travel with them.
//
// A message is one WriteFile on a message-mode pipe: the system keeps its boundary, so a
// message is received whole or (over kMaxMessage) read to its end and dropped. The addon puts
// its own header before the payload (see win.h) and checks it on receipt; the typed layer's
// packet format (docs/wire-format.md) is the payload, unchanged.
//
// Handles in a message (DuplicateHandle needs the other process, which a pipe does not name
// reliably once an end has moved, see docs/windows.md):
// - the receiving end is open in this process (registry.cc counts open ends by pipe name):
//   the handles are duplicated here and kept under a random 128-bit token that the message
//   carries; the receiver takes them from the registry (nothing a peer can forge);
// - otherwise the sender duplicates them into its own process ("parked") and the message names
//   the values and the sender's process id; the receiver takes them out of that process with
//   DuplicateHandle(DUPLICATE_CLOSE_SOURCE), and only from a process that proves it holds the
//   other side of this very pipe: the sender also parks a duplicate of the end it writes on (the
//   proof, kModeProof), and the receiver first duplicates that value out of the named process
//   WITHOUT closing it and checks it is the opposite end of the pipe it reads (ProofHolds). Only
//   then does it take the proof and the handles (closing them there). So a message can make us
//   take handles only from a process holding the writing side of our pipe (the sender itself,
//   or a process it shared that end with), never from any other process whose pid it names,
//   and never from this process. Two processes that never connected to each other (two helpers
//   given a channel by their parent) exchange handles that way too. A process that exits before
//   its message is read takes its parked handles with it (the receiver gets a packet flagged
//   PACKET_CTRUNCATED: MALFORMED).
// Every received handle is checked: a message-mode pipe opened for overlapped I/O becomes an
// end; a section of ours (pagefile-backed, our header) a section; a file (disk, byte pipe,
// character device) a C runtime descriptor of node.exe; anything else (a process, a thread, a
// pipe opened for synchronous I/O, which would block our reads) is closed and the packet flagged
// PACKET_CTRUNCATED. A pool segment's section travels attached to its lease end (lease.cc).
#include "win.h"

#include <bcrypt.h>
#include <winternl.h>

#include <string.h>

#include <algorithm>

#ifndef STATUS_BUFFER_OVERFLOW
#define STATUS_BUFFER_OVERFLOW ((NTSTATUS)0x80000005L)
#endif

namespace eicch {

namespace {

uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

void Put32(uint8_t* p, uint32_t v) { memcpy(p, &v, 4); }

void CloseAll(const std::vector<HANDLE>& hs) {
  for (HANDLE h : hs) CloseHandle(h);
}

// Whether a handle was opened for synchronous I/O (FILE_SYNCHRONOUS_IO_ALERT/NONALERT): an
// OVERLAPPED read of such a pipe blocks the caller, so it must never become an end.
bool OpenedSynchronous(HANDLE h, bool* known) {
  IO_STATUS_BLOCK iosb{};
  ULONG mode = 0;
  NTSTATUS st = NtQueryInformationFile(h, &iosb, &mode, sizeof mode,
                                       static_cast<FILE_INFORMATION_CLASS>(16));  // FileModeInformation
  *known = st == 0;
  return (mode & 0x30) != 0;
}

// A received handle as an id (an end or a C runtime descriptor), or -1 when refused (closed).
int32_t Adopt(State* s, HANDLE h) {
  uint64_t size = 0;
  if (IsSection(h, &size)) {  // a section (NtQuerySection answers for sections only)
    if (!SectionLength(h, &size)) {
      CloseHandle(h);  // file-backed, an image, or not made by this library
      return -1;
    }
    End* e = NewEnd(s, h, false);
    e->section = true;
    e->size = size;
    return e->id;
  }
  SetLastError(NO_ERROR);
  DWORD type = GetFileType(h);
  DWORD gle = GetLastError();
  if (type == FILE_TYPE_PIPE) {
    DWORD flags = 0;
    if (GetNamedPipeInfo(h, &flags, nullptr, nullptr, nullptr) && (flags & PIPE_TYPE_MESSAGE)) {
      bool known = false;
      if (OpenedSynchronous(h, &known) || !known) {
        CloseHandle(h);
        return -1;
      }
      DWORD mode = PIPE_READMODE_MESSAGE;
      SetNamedPipeHandleState(h, &mode, nullptr, nullptr);  // the read mode of this handle
      End* e = NewEnd(s, h, (flags & PIPE_SERVER_END) != 0);
      e->name = PipeNameOf(h);
      OpenAdd(e->name, e->server, 1);
      return e->id;
    }
  } else if (type == FILE_TYPE_UNKNOWN && gle != NO_ERROR) {
    CloseHandle(h);  // not a file object
    return -1;
  }
  int fd = CrtOpen(h);
  if (fd < 0) CloseHandle(h);
  return fd;
}

bool RandomToken(uint8_t* out) {
  return BCRYPT_SUCCESS(BCryptGenRandom(nullptr, out, 16, BCRYPT_USE_SYSTEM_PREFERRED_RNG));
}

// Whether `value`, a handle value in `proc` (opened with PROCESS_DUP_HANDLE), is the other end of
// the pipe instance `e` reads: a pipe end with e's pipe name, of the opposite side (server or
// client), whose instance has the same client and server process ids (the processes that created
// its two ends, recorded by the system per instance: this tells apart the instances of one
// IpcServer name whose clients are different processes; a socketpair's name is unique, 128
// random bits, one instance). Looks through a duplicate made WITHOUT DUPLICATE_CLOSE_SOURCE and
// closed here, so nothing changes in `proc` whatever the answer: a forged value naming some
// other process's file or pipe end is only looked at, never taken.
bool ProofHolds(HANDLE proc, uint64_t value, const End* e) {
  HANDLE d = nullptr;
  if (!DuplicateHandle(proc, reinterpret_cast<HANDLE>(static_cast<uintptr_t>(value)), GetCurrentProcess(), &d, 0,
                       FALSE, DUPLICATE_SAME_ACCESS)) {
    return false;
  }
  bool ok = false;
  bool known = false;
  DWORD flags = 0;
  ULONG dClient = 0, dServer = 0, eClient = 0, eServer = 0;
  // Our ends are opened for overlapped I/O. The mode is asked before the pipe queries: on
  // Windows a query of a handle opened for synchronous I/O waits while another thread of its
  // process is blocked reading it (libuv's pipe.c works around that for FileNameInformation),
  // and the value is the sender's choice.
  if (GetFileType(d) == FILE_TYPE_PIPE && !OpenedSynchronous(d, &known) && known &&
      GetNamedPipeInfo(d, &flags, nullptr, nullptr, nullptr) &&
      ((flags & PIPE_SERVER_END) != 0) != e->server &&
      GetNamedPipeClientProcessId(d, &dClient) && GetNamedPipeServerProcessId(d, &dServer) &&
      GetNamedPipeClientProcessId(e->h, &eClient) && GetNamedPipeServerProcessId(e->h, &eServer) &&
      dClient == eClient && dServer == eServer) {
    std::wstring name = PipeNameOf(d);
    ok = !name.empty() && name == (e->name.empty() ? PipeNameOf(e->h) : e->name);
  }
  CloseHandle(d);
  return ok;
}

}  // namespace

std::wstring PipeNameOf(HANDLE h) {
  union {
    FILE_NAME_INFO info;
    uint8_t bytes[sizeof(FILE_NAME_INFO) + 600];
  } u;
  if (!GetFileInformationByHandleEx(h, FileNameInfo, &u, sizeof u)) return std::wstring();
  return std::wstring(u.info.FileName, u.info.FileNameLength / sizeof(wchar_t));
}

void PostRead(End* e) {
  if (e->section || e->listener || e->rPending || e->hasMsg || e->eof || e->rerr || e->h == INVALID_HANDLE_VALUE) return;
  if (e->rbuf.size() < e->rfill + kReadChunk) e->rbuf.resize(e->rfill + kReadChunk);
  memset(&e->rov, 0, sizeof e->rov);
  e->rov.hEvent = e->rev;
  ResetEvent(e->rev);
  BOOL ok = ReadFile(e->h, e->rbuf.data() + e->rfill, kReadChunk, nullptr, &e->rov);
  DWORD err = ok ? 0 : GetLastError();
  // Done at once (TRUE, or ERROR_MORE_DATA for the first part of a bigger message) or later:
  // either way the result is taken from the OVERLAPPED by Settle, and the event is set.
  if (ok || err == ERROR_IO_PENDING || err == ERROR_MORE_DATA) {
    e->rPending = true;
    return;
  }
  if (IsGone(err)) {
    e->eof = true;
  } else {
    e->rerr = err;
  }
  SetEvent(e->rev);  // waiters wake and see the end or the error
}

bool Settle(End* e) {
  if (e->listener) {
    // The ConnectNamedPipe in flight (server.cc): a client connected, or the instance failed.
    if (!e->rPending || !HasOverlappedIoCompleted(&e->rov)) return false;
    e->rPending = false;
    NTSTATUS st = static_cast<NTSTATUS>(e->rov.Internal);
    DWORD err = st == 0 ? 0 : RtlNtStatusToDosError(st);
    if (err == 0 || err == ERROR_PIPE_CONNECTED) e->connected = true;
    else if (err != ERROR_OPERATION_ABORTED) e->rerr = err;
    return true;
  }
  bool any = false;
  while (!e->listener && e->rPending && HasOverlappedIoCompleted(&e->rov)) {
    e->rPending = false;
    any = true;
    NTSTATUS st = static_cast<NTSTATUS>(e->rov.Internal);
    size_t n = e->rov.InternalHigh;
    if (st == 0 || st == STATUS_BUFFER_OVERFLOW) {
      e->rfill += n;
      if (e->rfill > kMaxMessage) {
        // Too big for any packet: keep reading to the message's end over the same bytes.
        e->rTruncated = true;
        e->rfill = kMaxMessage;
      }
      if (st == 0) {
        e->hasMsg = true;
        break;
      }
      PostRead(e);
      continue;
    }
    DWORD err = RtlNtStatusToDosError(st);
    e->rfill = 0;  // the part of a message read so far is dropped
    e->rTruncated = false;
    if (IsGone(err)) {
      e->eof = true;
    } else if (err != ERROR_OPERATION_ABORTED) {
      e->rerr = err;
    }
  }
  if (e->wPending && HasOverlappedIoCompleted(&e->wov)) {
    e->wPending = false;
    any = true;
    NTSTATUS st = static_cast<NTSTATUS>(e->wov.Internal);
    if (st != 0) {
      DWORD err = RtlNtStatusToDosError(st);
      if (IsGone(err)) e->writeGone = true;
      // Nobody will take this message's handles: close them here.
      for (HANDLE h : e->wParked) ParkRemove(h);
      CloseAll(e->wParked);
      std::vector<HANDLE> back;
      if (!e->wToken.empty() && LocalTake(e->wToken, &back)) CloseAll(back);
    }
    e->wParked.clear();
    e->wToken.clear();
    std::vector<uint8_t>().swap(e->wbuf);
  }
  return any;
}

bool ReadReady(End* e) {
  Settle(e);
  if (e->listener) return e->connected || e->rerr != 0;
  return e->hasMsg || e->eof || e->rerr != 0;
}

// writePending(id) -> 0 when the last accepted message is all written, AGAIN while its
// overlapped WriteFile is still in flight (the pipe's buffer was full), GONE when it failed
// because the peer went away. The typed layer waits on this before the process may exit: a
// write still pending when the process ends is cancelled, and its message lost.
Napi::Value WritePending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  End* e = GetEnd(StateOf(info), env, info[0]);
  if (e->listener || e->section) return Napi::Number::New(env, 0);
  Settle(e);
  if (e->wPending) return Napi::Number::New(env, kAgain);
  return Napi::Number::New(env, e->writeGone ? kGone : 0);
}

// sendPacket(id, parts, handles | null) -> payload bytes when accepted, AGAIN while the
// previous message is being written, GONE when the peer closed, TOO_BIG over the payload bound.
// The handles (ids) stay open here; the receiver gets its own.
Napi::Value SendPacket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  End* e = GetEnd(s, env, info[0]);
  if (e->listener || e->section) throw Napi::TypeError::New(env, "sendPacket: not a connected pipe end");
  if (info.Length() < 2 || !info[1].IsArray()) throw Napi::TypeError::New(env, "sendPacket(id, parts, handles): parts must be an array");
  Napi::Array parts = info[1].As<Napi::Array>();
  std::vector<int32_t> ids;
  if (info.Length() > 2 && info[2].IsArray()) {
    Napi::Array a = info[2].As<Napi::Array>();
    if (a.Length() > kMaxHandles) throw Napi::RangeError::New(env, "sendPacket: at most 253 handles per message");
    for (uint32_t i = 0; i < a.Length(); i++) ids.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  }
  Settle(e);
  if (e->writeGone) return Napi::Number::New(env, kGone);
  if (e->wPending) return Napi::Number::New(env, kAgain);
  size_t payload = 0;
  for (uint32_t i = 0; i < parts.Length(); i++) {
    Napi::Value p = parts.Get(i);
    if (!p.IsTypedArray()) throw Napi::TypeError::New(env, "sendPacket: every part must be a typed array");
    payload += p.As<Napi::TypedArray>().ByteLength();
  }
  if (payload > kMaxPayload) return Napi::Number::New(env, kTooBig);

  // The handles: duplicated first, so a failure leaves nothing written. A pool segment's lease
  // end takes its section along, right after it, marked in the bitmap (lease.cc).
  std::vector<HANDLE> dups;
  std::vector<size_t> attached;  // indexes in dups of attached sections
  std::vector<const End*> froms;  // the end each dup is of (nullptr: a C runtime descriptor, a section)
  for (int32_t id : ids) {
    HANDLE src = INVALID_HANDLE_VALUE;
    End* from = nullptr;
    if (id >= kIdBase) {
      auto it = s->ends.find(id);
      if (it != s->ends.end()) from = it->second, src = from->h;
    } else {
      src = CrtHandle(id);
    }
    HANDLE d = nullptr;
    if (src == INVALID_HANDLE_VALUE ||
        !DuplicateHandle(GetCurrentProcess(), src, GetCurrentProcess(), &d, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
      DWORD err = src == INVALID_HANDLE_VALUE ? ERROR_INVALID_HANDLE : GetLastError();
      CloseAll(dups);
      ThrowWin(env, err, "DuplicateHandle");
    }
    dups.push_back(d);
    froms.push_back(from);
    if (from != nullptr && from->lease != nullptr) {
      if (!LeaseDup(from, &d)) {
        DWORD err = GetLastError();
        CloseAll(dups);
        ThrowWin(env, err, "DuplicateHandle");
      }
      attached.push_back(dups.size());
      dups.push_back(d);
      froms.push_back(nullptr);
    }
  }
  if (dups.size() > kMaxHandles) {
    CloseAll(dups);
    throw Napi::RangeError::New(env, "sendPacket: at most 253 handles per message (a pool segment counts two)");
  }
  bool local = !dups.empty() && !e->remoteOnly && PeerIsLocal(e->name, e->server);
  uint8_t token[16];
  if (local && !RandomToken(token)) {
    CloseAll(dups);
    ThrowWin(env, GetLastError(), "BCryptGenRandom");
  }
  // Remote: the proof that this process holds the writing side of the pipe (see the file
  // comment), a duplicate of this end parked with the handles. Not this end's own value: a
  // sender may close its end right after sending (tx.send({ file }); tx.close()), and the
  // receiver checks the proof when it reads, later.
  HANDLE proof = nullptr;
  if (!local && !dups.empty() &&
      !DuplicateHandle(GetCurrentProcess(), e->h, GetCurrentProcess(), &proof, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
    DWORD err = GetLastError();
    CloseAll(dups);
    ThrowWin(env, err, "DuplicateHandle");
  }
  size_t list = dups.empty() ? 0 : local ? 16 : 8 + 8 * dups.size();
  size_t head = kHeader + list + (attached.empty() ? 0 : (dups.size() + 7) / 8);
  e->wbuf.resize(head + payload);
  uint8_t* w = e->wbuf.data();
  memset(w + kHeader + list, 0, head - kHeader - list);
  Put32(w, kMagic);
  Put32(w + 4, static_cast<uint32_t>(dups.size()));
  Put32(w + 8, GetCurrentProcessId());
  Put32(w + 12, (local ? kModeLocal : 0) | (attached.empty() ? 0 : kModeAttached) | (proof != nullptr ? kModeProof : 0));
  if (local) {
    memcpy(w + kHeader, token, 16);
  } else if (proof != nullptr) {
    uint64_t v = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(proof));
    memcpy(w + kHeader, &v, 8);
    for (size_t i = 0; i < dups.size(); i++) {
      v = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(dups[i]));
      memcpy(w + kHeader + 8 + 8 * i, &v, 8);
    }
  }
  for (size_t i : attached) w[kHeader + list + i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  size_t at = head;
  for (uint32_t i = 0; i < parts.Length(); i++) {
    Napi::TypedArray p = parts.Get(i).As<Napi::TypedArray>();
    size_t n = p.ByteLength();
    if (n > 0) {
      memcpy(w + at, static_cast<uint8_t*>(p.ArrayBuffer().Data()) + p.ByteOffset(), n);
    }
    at += n;
  }
  std::string key(reinterpret_cast<char*>(token), local ? 16 : 0);
  if (local) LocalPut(key, dups);  // before the write: the receiver may read at once
  memset(&e->wov, 0, sizeof e->wov);
  e->wov.hEvent = e->wev;
  ResetEvent(e->wev);
  BOOL ok = WriteFile(e->h, w, static_cast<DWORD>(e->wbuf.size()), nullptr, &e->wov);
  DWORD err = ok ? 0 : GetLastError();
  if (ok || err == ERROR_IO_PENDING) {
    e->wPending = true;
    // If the write fails (the peer went away), Settle closes what nobody will take.
    if (local) {
      e->wToken = key;
    } else {
      e->wParked = dups;
      for (size_t i = 0; i < dups.size(); i++) {
        bool section = std::find(attached.begin(), attached.end(), i) != attached.end();
        ParkAdd(ParkedOf(dups[i], froms[i], section), e->h, s);
      }
      if (proof != nullptr) {
        // Parked like the handles: the exit wait and the fingerprints (a pipe end) cover it.
        e->wParked.push_back(proof);
        ParkAdd(ParkedOf(proof, e, false), e->h, s);
      }
    }
    Settle(e);
    Arm(s, e);
    return Napi::Number::New(env, static_cast<double>(payload));
  }
  std::vector<uint8_t>().swap(e->wbuf);
  if (local) {
    std::vector<HANDLE> back;
    LocalTake(key, &back);
  }
  CloseAll(dups);
  if (proof != nullptr) CloseHandle(proof);
  if (IsGone(err)) {
    e->writeGone = true;
    return Napi::Number::New(env, kGone);
  }
  ThrowWin(env, err, "WriteFile");
}

// recvPackets(id, meta, fdsOut, maxPackets, maxPacketBytes, arena, arenaOffset, block?): the
// contract of NativeBinding.recvPackets, one message per call: 1 (meta[0] = 1, the packet at
// meta[2..5] = [offset, length, handle count, flags]), 0 at the end, AGAIN. With `block`, waits
// for a message.
Napi::Value RecvPackets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  End* e = GetEnd(s, env, info[0]);
  if (e->listener || e->section) throw Napi::TypeError::New(env, "recvPackets: not a connected pipe end");
  Napi::Int32Array meta = info[1].As<Napi::Int32Array>();
  Napi::Int32Array fdsOut = info[2].As<Napi::Int32Array>();
  size_t maxBytes = static_cast<size_t>(info[4].As<Napi::Number>().DoubleValue());
  Napi::Uint8Array arena = info[5].As<Napi::Uint8Array>();
  size_t off = static_cast<size_t>(info[6].As<Napi::Number>().DoubleValue());
  bool block = info.Length() > 7 && info[7].ToBoolean();
  if (meta.ElementLength() < 6) throw Napi::RangeError::New(env, "recvPackets: meta needs 6 elements");
  if (off > arena.ByteLength() || arena.ByteLength() - off < maxBytes) {
    throw Napi::RangeError::New(env, "recvPackets: the arena has less than maxPacketBytes after arenaOffset");
  }
  if (!ReadReady(e)) {
    PostRead(e);
    while (!ReadReady(e) && block) {
      WaitForSingleObject(e->rev, INFINITE);
    }
  }
  if (!e->hasMsg) {
    if (e->rerr != 0) ThrowWin(env, e->rerr, "ReadFile");
    if (e->eof) return Napi::Number::New(env, 0);
    Arm(s, e);
    return Napi::Number::New(env, kAgain);
  }
  const uint8_t* m = e->rbuf.data();
  size_t len = e->rfill;
  int flags = e->rTruncated ? kTruncated : 0;
  size_t head = len;  // a malformed header: no payload
  std::vector<HANDLE> got;
  const uint8_t* bitmap = nullptr;  // attached sections (win.h), or none
  uint32_t mode = len >= kHeader ? Get32(m + 12) : 0;
  if (len >= kHeader && Get32(m) == kMagic && Get32(m + 4) <= kMaxHandles &&
      mode <= (kModeLocal | kModeAttached | kModeProof) && (mode & (kModeLocal | kModeProof)) != (kModeLocal | kModeProof)) {
    uint32_t count = Get32(m + 4);
    DWORD pid = Get32(m + 8);
    bool local = (mode & kModeLocal) != 0;
    bool proved = (mode & kModeProof) != 0;
    size_t need = kHeader + (proved ? 8 : 0) + (count == 0 ? 0 : local ? 16 : 8 * static_cast<size_t>(count));
    if (mode & kModeAttached) {
      bitmap = m + need;
      need += (count + 7) / 8;
    }
    if (len >= need) {
      head = need;
      if (count > fdsOut.ElementLength()) {
        throw Napi::RangeError::New(env, "recvPackets: fdsOut has room for fewer handles than the message carries");
      }
      if (count > 0 && local) {
        std::string key(reinterpret_cast<const char*>(m + kHeader), 16);
        if (!LocalTake(key, &got) || got.size() != count) {
          CloseAll(got);
          got.clear();
          flags |= kCtruncated;
        }
      } else if (count > 0) {
        // Only from a process that holds the other side of this pipe (the proof, checked
        // without taking it), never from this one (see the file comment). Then the proof is
        // taken (closed there) and closed here, and the handles taken.
        uint64_t pv = 0;
        if (proved) memcpy(&pv, m + kHeader, 8);
        HANDLE proc = proved && pid != GetCurrentProcessId() ? OpenProcess(PROCESS_DUP_HANDLE, FALSE, pid) : nullptr;
        if (proc != nullptr && !ProofHolds(proc, pv, e)) {
          CloseHandle(proc);
          proc = nullptr;
        }
        if (proc != nullptr) {
          HANDLE p = nullptr;
          if (DuplicateHandle(proc, reinterpret_cast<HANDLE>(static_cast<uintptr_t>(pv)), GetCurrentProcess(), &p, 0,
                              FALSE, DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE)) {
            CloseHandle(p);
          } else {
            CloseHandle(proc);  // the value changed since the check (only its holder can do that)
            proc = nullptr;
          }
        }
        for (uint32_t i = 0; proc != nullptr && i < count; i++) {
          uint64_t v;
          memcpy(&v, m + kHeader + 8 + 8 * i, 8);
          HANDLE h = nullptr;
          if (!DuplicateHandle(proc, reinterpret_cast<HANDLE>(static_cast<uintptr_t>(v)), GetCurrentProcess(), &h, 0,
                               FALSE, DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE)) {
            break;
          }
          got.push_back(h);
        }
        if (proc != nullptr) CloseHandle(proc);
        if (got.size() != count) {
          CloseAll(got);
          got.clear();
          flags |= kCtruncated;
        }
      }
    } else {
      flags |= kTruncated;
    }
  } else {
    flags |= kTruncated;
  }
  std::vector<int32_t> ids;
  int32_t prev = -1;  // the id of the handle before, which an attached section belongs to
  for (size_t i = 0; i < got.size(); i++) {
    if (bitmap != nullptr && (bitmap[i / 8] >> (i % 8)) & 1) {
      if (!LeaseAttach(s, prev, got[i])) flags |= kCtruncated;
      prev = -1;  // one section per end
      continue;
    }
    prev = Adopt(s, got[i]);
    if (prev < 0) flags |= kCtruncated;
    else ids.push_back(prev);
  }
  if (flags & kCtruncated) {
    // All or none: a message's handles are refused together.
    for (int32_t id : ids) {
      if (id >= kIdBase) CloseEnd(s, s->ends[id]);
      else CrtClose(env, id);
    }
    ids.clear();
  }
  size_t plen = len - head;
  if (plen > maxBytes) {
    plen = maxBytes;
    flags |= kTruncated;
  }
  if (plen > 0) memcpy(arena.Data() + off, m + head, plen);
  for (size_t i = 0; i < ids.size(); i++) fdsOut[i] = ids[i];
  meta[0] = 1;
  meta[1] = 0;
  meta[2] = static_cast<int32_t>(off);
  meta[3] = static_cast<int32_t>(plen);
  meta[4] = static_cast<int32_t>(ids.size());
  meta[5] = flags;
  e->hasMsg = false;
  e->rfill = 0;
  e->rTruncated = false;
  if (e->rbuf.size() > (256u << 10)) std::vector<uint8_t>().swap(e->rbuf);
  PostRead(e);
  Arm(s, e);
  return Napi::Number::New(env, 1);
}

}  // namespace eicch
