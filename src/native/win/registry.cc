// Process-wide state of the win32 transport, shared by every environment (main thread and
// workers) behind one critical section: the processes we may take handles from, the handles
// parked for receivers in this process, and which pipe ends are open here.
#include "win.h"

#include <winternl.h>

#include <string.h>

#include <map>
#include <set>

namespace eicch {

namespace {

struct Registry {
  CRITICAL_SECTION lock;
  // Processes whose handles a message may name (pid checked by the system on a connection:
  // GetNamedPipeClientProcessId / ServerProcessId on accept and connect). Never this process:
  // handles between ends of one process travel by token (below).
  std::set<DWORD> knownPids;
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

// Drops the entries whose handle was taken: the peer's DUPLICATE_CLOSE_SOURCE closed it here,
// so GetHandleInformation fails on it. (A value the system reused for a new handle of ours reads
// as not taken: waiting for it only costs the exit wait's bound, and it is never closed here.)
// Returns how many were taken. Caller holds the lock.
size_t SweepTaken(State* owner) {
  auto& v = R().parked;
  size_t taken = 0;
  for (size_t i = 0; i < v.size();) {
    DWORD flags;
    if ((owner == nullptr || v[i].owner == owner) && !GetHandleInformation(v[i].h, &flags)) {
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

void AddKnownPid(DWORD pid) {
  if (pid == 0 || pid == GetCurrentProcessId()) return;
  Lock l;
  R().knownPids.insert(pid);
}

bool IsKnownPid(DWORD pid) {
  Lock l;
  return R().knownPids.count(pid) != 0;
}

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

void ParkAdd(HANDLE h, HANDLE pipe, State* owner) {
  Lock l;
  auto& r = R();
  // Entries are dropped when found taken; sweep when the list doubled since the last sweep, so
  // it stays about the size of what peers have not taken yet.
  if (r.parked.size() >= 64 && r.parked.size() >= 2 * r.sweptSize) {
    SweepTaken(nullptr);
    r.sweptSize = r.parked.size();
  }
  r.parked.push_back(Parked{h, pipe, owner});
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

size_t ParkedPending() {
  Lock l;
  SweepTaken(nullptr);
  return R().parked.size();
}

bool ParkEndClosing(State* s, HANDLE pipe) {
  Lock l;
  auto& v = R().parked;
  bool untaken = false;
  for (size_t i = 0; i < v.size();) {
    DWORD flags;
    if (v[i].pipe == pipe && !GetHandleInformation(v[i].h, &flags)) {
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
