// Process-wide state of the win32 transport, shared by every environment (main thread and
// workers) behind one critical section: the handles parked for receivers in this process, the
// handles between ends of this process (by token), and which pipe ends are open here. (Which
// process a message's handles may be taken from is decided per message, by its proof: io.cc.)
#include "win.h"

#include <winternl.h>

#include <string.h>

#include <map>
#include <set>

namespace eicch {

namespace {

struct Registry {
  CRITICAL_SECTION lock;
  // Messages between two ends of this process: the handles stay in this process, in this map,
  // under a token of 128 random bits that the message carries (never handle values, which a
  // hostile peer could name to make us take our own handles).
  std::map<std::string, std::vector<HANDLE>> local;
  // Open pipe ends of this process by pipe name: [server ends, client ends].
  std::map<std::wstring, std::pair<int, int>> open;
  // Handles parked here for a peer process to take (DUPLICATE_CLOSE_SOURCE closes them here),
  // each with the pipe end its message was written to (nullptr once that end is closed and its
  // handle not kept) and the environment that wrote it.
  std::vector<Parked> parked;
  size_t sweptSize = 0;  // parked.size() after the last sweep (ParkAdd sweeps when it doubles)
  // Pipe ends closed during an environment's exit while handles parked through them were not
  // taken yet: kept open (owned here) so the exit wait can see whether their peer still lives;
  // closed when that wait ends.
  std::vector<std::pair<HANDLE, State*>> kept;
  Registry() { InitializeCriticalSection(&lock); }
};

Registry& R() {
  static Registry* r = new Registry();  // never destroyed: other threads may still use it at exit
  return *r;
}

struct Lock {
  Lock() { EnterCriticalSection(&R().lock); }
  ~Lock() { LeaveCriticalSection(&R().lock); }
};

constexpr int kParkedUnknown = 0, kParkedPipe = 1, kParkedFile = 2, kParkedSection = 3;

uint64_t NameHash(const std::wstring& name) {  // FNV-1a
  uint64_t x = 1469598103934665603ull;
  for (wchar_t c : name) x = (x ^ static_cast<uint64_t>(c)) * 1099511628211ull;
  return x;
}

bool FileId(HANDLE h, uint64_t* a, uint64_t* b) {
  BY_HANDLE_FILE_INFORMATION fi;
  if (!GetFileInformationByHandle(h, &fi)) return false;
  *a = fi.dwVolumeSerialNumber;
  *b = (static_cast<uint64_t>(fi.nFileIndexHigh) << 32) | fi.nFileIndexLow;
  return true;
}

// Whether the peer took this parked handle (see Parked): its value is closed, or names another
// object now. Never closes anything (a reused value is someone else's handle).
bool Taken(const Parked& p) {
  DWORD flags;
  if (!GetHandleInformation(p.h, &flags)) return true;
  uint64_t a = 0, b = 0;
  switch (p.kind) {
    case kParkedPipe: {
      DWORD pipeFlags = 0;
      if (!GetNamedPipeInfo(p.h, &pipeFlags, nullptr, nullptr, nullptr)) return true;
      return NameHash(PipeNameOf(p.h)) != p.a || ((pipeFlags & PIPE_SERVER_END) != 0) != (p.b != 0);
    }
    case kParkedFile:
      return !FileId(p.h, &a, &b) || a != p.a || b != p.b;
    case kParkedSection:
      return !IsSection(p.h, &a) || a != p.a;
    default:
      return false;
  }
}

// Drops the entries whose handle was taken (Taken). Returns how many. Caller holds the lock.
size_t SweepTaken(State* owner) {
  auto& v = R().parked;
  size_t taken = 0;
  for (size_t i = 0; i < v.size();) {
    if ((owner == nullptr || v[i].owner == owner) && Taken(v[i])) {
      v[i] = v.back();
      v.pop_back();
      taken++;
    } else {
      i++;
    }
  }
  return taken;
}

// FILE_PIPE_LOCAL_INFORMATION (ntifs.h; mingw's winternl.h lacks it) and its class number.
struct PipeLocalInfo {
  ULONG type, configuration, maxInstances, curInstances, inboundQuota, readDataAvailable,
      outboundQuota, writeQuotaAvailable, state, end;
};
constexpr int kFilePipeLocalInformation = 24;
constexpr ULONG kPipeClosingState = 4;  // FILE_PIPE_CLOSING_STATE: the other end is closed

// Whether every handle of this pipe end's peer is closed (nobody can read what we wrote any
// more, so handles parked for it will never be taken). Under Wine 8 NamedPipeState reads
// FILE_PIPE_CLOSING_STATE then, even with unread data left for us (checked), and PeekNamedPipe
// fails with ERROR_BROKEN_PIPE when no data is left. *writeQuota: WriteQuotaAvailable, the room
// left in our outbound buffer, which grows as the peer reads; Wine 8 always answers 0 there
// (a FIXME in its ntdll, checked), so under Wine it never shows progress.
bool PeerGone(HANDLE pipe, ULONG* writeQuota) {
  IO_STATUS_BLOCK io{};
  PipeLocalInfo info{};
  NTSTATUS st = NtQueryInformationFile(pipe, &io, &info, sizeof info, static_cast<FILE_INFORMATION_CLASS>(kFilePipeLocalInformation));
  *writeQuota = st == 0 ? info.writeQuotaAvailable : 0;
  if (st == 0 && info.state == kPipeClosingState) return true;
  DWORD avail = 0;
  return !PeekNamedPipe(pipe, nullptr, 0, nullptr, &avail, nullptr) && IsGone(GetLastError());
}

}  // namespace

void LocalPut(const std::string& token, std::vector<HANDLE> handles) {
  Lock l;
  R().local[token] = std::move(handles);
}

bool LocalTake(const std::string& token, std::vector<HANDLE>* out) {
  Lock l;
  auto it = R().local.find(token);
  if (it == R().local.end()) return false;
  *out = std::move(it->second);
  R().local.erase(it);
  return true;
}

size_t LocalCount() {
  Lock l;
  return R().local.size();
}

Parked ParkedOf(HANDLE h, const End* from, bool section) {
  Parked p{h, nullptr, nullptr, kParkedUnknown, 0, 0};
  if (from != nullptr && !section && !from->section && !from->listener && !from->name.empty()) {
    p.kind = kParkedPipe;
    p.a = NameHash(from->name);
    p.b = from->server ? 1 : 0;
  } else if (section || (from != nullptr && from->section)) {
    if (IsSection(h, &p.a)) p.kind = kParkedSection;
  } else if (FileId(h, &p.a, &p.b)) {
    p.kind = kParkedFile;
  }
  return p;
}

void ParkAdd(Parked p, HANDLE pipe, State* owner) {
  p.pipe = pipe;
  p.owner = owner;
  Lock l;
  auto& r = R();
  // Entries are dropped when found taken; sweep when the list doubled since the last sweep, so
  // it stays about the size of what peers have not taken yet.
  if (r.parked.size() >= 64 && r.parked.size() >= 2 * r.sweptSize) {
    SweepTaken(nullptr);
    r.sweptSize = r.parked.size();
  }
  r.parked.push_back(p);
}

void ParkRemove(HANDLE h) {
  Lock l;
  auto& v = R().parked;
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i].h == h) {
      v[i] = v.back();
      v.pop_back();
      return;
    }
  }
}

bool ParkEndClosing(State* s, HANDLE pipe) {
  Lock l;
  auto& v = R().parked;
  bool untaken = false;
  for (size_t i = 0; i < v.size();) {
    if (v[i].pipe == pipe && Taken(v[i])) {
      v[i] = v.back();
      v.pop_back();
      continue;
    }
    if (v[i].pipe == pipe) untaken = true;
    i++;
  }
  if (untaken && s->exiting) {
    R().kept.emplace_back(pipe, s);
    return true;
  }
  // The handle is closed next and its value may be reused: forget it.
  for (auto& p : v) {
    if (p.pipe == pipe) p.pipe = nullptr;
  }
  return false;
}

// The exit wait (see win.h). Polls every 10 ms, under the lock for each round only.
void WaitParked(State* owner, bool atProcessExit) {
  constexpr ULONGLONG kPollMs = 10;
  const ULONGLONG start = GetTickCount64();
  ULONGLONG progressAt = start;
  std::map<HANDLE, ULONG> quota;  // each pipe's last WriteQuotaAvailable
  for (;;) {
    size_t pending = 0;
    bool progress = false;
    {
      // At process exit (DLL detach) the other threads are gone: one that died holding the
      // lock would hang us, so there the wait is skipped rather than blocked.
      if (atProcessExit) {
        if (!TryEnterCriticalSection(&R().lock)) return;
      } else {
        EnterCriticalSection(&R().lock);
      }
      auto& v = R().parked;
      if (SweepTaken(owner) > 0) progress = true;
      std::set<HANDLE> gone, seen;
      for (const Parked& p : v) {
        if ((owner != nullptr && p.owner != owner) || p.pipe == nullptr || !seen.insert(p.pipe).second) continue;
        ULONG q = 0;
        if (PeerGone(p.pipe, &q)) {
          gone.insert(p.pipe);
          continue;
        }
        auto it = quota.find(p.pipe);
        if (it != quota.end() && q > it->second) progress = true;  // the peer read some of it
        quota[p.pipe] = q;
      }
      for (size_t i = 0; i < v.size();) {
        bool mine = owner == nullptr || v[i].owner == owner;
        if (mine && v[i].pipe != nullptr && gone.count(v[i].pipe) != 0) {
          // Its reader is gone: it will never be taken. Not closed here (the value may have
          // been taken and reused in between), only no longer waited for.
          v[i] = v.back();
          v.pop_back();
          continue;
        }
        if (mine) pending++;
        i++;
      }
      LeaveCriticalSection(&R().lock);
    }
    ULONGLONG now = GetTickCount64();
    if (progress) progressAt = now;
    if (pending == 0 || now - progressAt >= kExitStallMs || now - start >= kExitCapMs) break;
    Sleep(static_cast<DWORD>(kPollMs));
  }
  if (atProcessExit) return;  // the process ends: nothing to tidy
  // What is left is no longer waited for (a later wait would only repeat this one), and the
  // pipe ends kept for this wait are closed now (a worker's end: the process goes on).
  Lock l;
  auto& r = R();
  std::vector<HANDLE> close;
  for (size_t i = 0; i < r.kept.size();) {
    if (owner == nullptr || r.kept[i].second == owner) {
      close.push_back(r.kept[i].first);
      r.kept[i] = r.kept.back();
      r.kept.pop_back();
    } else {
      i++;
    }
  }
  for (size_t i = 0; i < r.parked.size();) {
    if (owner == nullptr || r.parked[i].owner == owner) {
      r.parked[i] = r.parked.back();
      r.parked.pop_back();
    } else {
      for (HANDLE h : close) {
        if (r.parked[i].pipe == h) r.parked[i].pipe = nullptr;
      }
      i++;
    }
  }
  for (HANDLE h : close) CloseHandle(h);
}

void OpenAdd(const std::wstring& name, bool server, int delta) {
  if (name.empty()) return;
  Lock l;
  auto& c = R().open[name];
  (server ? c.first : c.second) += delta;
  if (c.first <= 0 && c.second <= 0) R().open.erase(name);
}

bool PeerIsLocal(const std::wstring& name, bool server) {
  if (name.empty()) return false;
  Lock l;
  auto it = R().open.find(name);
  if (it == R().open.end()) return false;
  return (server ? it->second.second : it->second.first) > 0;
}

}  // namespace eicch
