// Process-wide state of the win32 transport, shared by every environment (main thread and
// workers) behind one critical section: the processes we may take handles from, the handles
// parked for receivers in this process, and which pipe ends are open here.
#include "win.h"

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
  // Handles parked here for a peer process to take (DUPLICATE_CLOSE_SOURCE closes them here).
  std::vector<HANDLE> parked;
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

void ParkAdd(HANDLE h) {
  Lock l;
  R().parked.push_back(h);
}

void ParkRemove(HANDLE h) {
  Lock l;
  auto& v = R().parked;
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i] == h) {
      v[i] = v.back();
      v.pop_back();
      return;
    }
  }
}

// Parked handles not taken yet: a handle the peer took is closed here, so GetHandleInformation
// fails on it and it is dropped from the list. (A value the system reused for a new handle of
// ours reads as not taken: waiting for it only costs the wait's bound.)
size_t ParkedPending() {
  Lock l;
  auto& v = R().parked;
  for (size_t i = 0; i < v.size();) {
    DWORD flags;
    if (!GetHandleInformation(v[i], &flags)) {
      v[i] = v.back();
      v.pop_back();
    } else {
      i++;
    }
  }
  return v.size();
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
