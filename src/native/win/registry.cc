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
