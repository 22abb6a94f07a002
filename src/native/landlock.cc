// Landlock sandbox and no_new_privs: landlockAbi() and landlockRestrict(rules).
// All entry points run on the JS thread that calls them; OnSyncSignal runs on every other thread.
//
// Landlock (and no_new_privs) apply to the calling thread only before ABI 8
// (LANDLOCK_RESTRICT_SELF_TSYNC). Node already runs other threads when a helper locks down (libuv
// threadpool, which does every asynchronous fs call; V8 platform workers), so the ruleset is
// applied to each of them from a signal handler, as nptl(7) does for setxid and libpsx(3) does
// for libcap. Landlock erratum 2 lets the resulting sibling domains keep signalling each other.
// Docs: https://docs.kernel.org/userspace-api/landlock.html
#if !defined(__linux__)
#error "landlock.cc is Linux-only (binding.gyp leaves it out elsewhere)"
#endif

#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace {

// ---- kernel ABI, defined here because distribution headers lag behind (linux/landlock.h of
// this machine stops at ABI 2).
#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif

struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI 4
  uint64_t scoped;              // ABI 6
};

struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

struct NetPortAttr {
  uint64_t allowed_access;
  uint64_t port;
};

constexpr uint32_t kCreateRulesetVersion = 1U << 0;
constexpr uint32_t kCreateRulesetErrata = 1U << 1;
constexpr uint32_t kRestrictSelfTsync = 1U << 3;  // ABI 8
constexpr int kRulePathBeneath = 1;
constexpr int kRuleNetPort = 2;

constexpr uint64_t kFsExecute = 1ULL << 0;
constexpr uint64_t kFsWriteFile = 1ULL << 1;
constexpr uint64_t kFsReadFile = 1ULL << 2;
constexpr uint64_t kFsReadDir = 1ULL << 3;
constexpr uint64_t kFsRemoveDir = 1ULL << 4;
constexpr uint64_t kFsRemoveFile = 1ULL << 5;
constexpr uint64_t kFsMakeChar = 1ULL << 6;
constexpr uint64_t kFsMakeDir = 1ULL << 7;
constexpr uint64_t kFsMakeReg = 1ULL << 8;
constexpr uint64_t kFsMakeSock = 1ULL << 9;
constexpr uint64_t kFsMakeFifo = 1ULL << 10;
constexpr uint64_t kFsMakeBlock = 1ULL << 11;
constexpr uint64_t kFsMakeSym = 1ULL << 12;
constexpr uint64_t kFsRefer = 1ULL << 13;     // ABI 2
constexpr uint64_t kFsTruncate = 1ULL << 14;  // ABI 3
constexpr uint64_t kFsIoctlDev = 1ULL << 15;  // ABI 5

constexpr uint64_t kNetBindTcp = 1ULL << 0;     // ABI 4
constexpr uint64_t kNetConnectTcp = 1ULL << 1;  // ABI 4

constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;              // ABI 6

// Erratum 2 (bit 1): signals between threads of one process are allowed whatever their domains.
constexpr int kErratumSignalThreads = 1 << 1;

constexpr uint64_t kFsAbi1 = (1ULL << 13) - 1;
// Rights that apply to a non-directory; others make landlock_add_rule fail with EINVAL.
constexpr uint64_t kFsFileRights = kFsExecute | kFsWriteFile | kFsReadFile | kFsTruncate | kFsIoctlDev;

constexpr uint64_t kReadRights = kFsReadFile | kFsReadDir;
constexpr uint64_t kExecRights = kFsExecute | kFsReadFile | kFsReadDir;
// Never MAKE_CHAR/MAKE_BLOCK.
constexpr uint64_t kWriteRights = kFsWriteFile | kFsRemoveDir | kFsRemoveFile | kFsMakeDir | kFsMakeReg |
                                  kFsMakeSock | kFsMakeFifo | kFsMakeSym | kFsRefer | kFsTruncate |
                                  kFsIoctlDev;

uint64_t HandledFs(int abi) {
  if (abi < 1) return 0;
  uint64_t fs = kFsAbi1;
  if (abi >= 2) fs |= kFsRefer;
  if (abi >= 3) fs |= kFsTruncate;
  if (abi >= 5) fs |= kFsIoctlDev;
  return fs;
}

int QueryAbi() {
  long abi = syscall(__NR_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

int QueryErrata() {
  long errata = syscall(__NR_landlock_create_ruleset, nullptr, 0, kCreateRulesetErrata);
  return errata < 0 ? 0 : static_cast<int>(errata);
}

[[noreturn]] void ThrowErrnoAt(Napi::Env env, int err, const char* syscall_name, const std::string& detail = "") {
  std::string message = std::string(syscall_name) + ": " + strerror(err);
  if (!detail.empty()) message += " (" + detail + ")";
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object obj = error.Value();
  // Same shape as libuv/Node errors: code 'EACCES', errno positive.
  // eic::ErrnoName, not strerrorname_np: that needs glibc 2.32.
  const char* code = eic::ErrnoName(err);
  obj.Set("code", Napi::String::New(env, code != nullptr ? code : "EUNKNOWN"));
  obj.Set("errno", Napi::Number::New(env, err));
  obj.Set("syscall", Napi::String::New(env, syscall_name));
  if (!detail.empty()) obj.Set("path", Napi::String::New(env, detail));
  throw error;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// ---- applying to sibling threads

constexpr int kMaxThreads = 4096;
constexpr int kPending = 0;
constexpr int kDone = 1;
constexpr int kGone = 2;
constexpr int kBlocked = 3;
constexpr int kTimedOut = 4;
// Negative slot results are -errno from prctl or landlock_restrict_self in that thread.

struct Slot {
  std::atomic<pid_t> tid;
  std::atomic<int> result;
};

Slot g_slots[kMaxThreads];
std::atomic<int> g_slot_count{0};
std::atomic<bool> g_active{false};
std::atomic<int> g_ruleset_fd{-1};
std::mutex g_sync_mutex;  // one landlockRestrict at a time per process (workers are threads)
int g_signal = 0;      // chosen once, its handler stays installed for the life of the process
int g_task_dir = -1;   // /proc/self/task, kept open: later layers may deny opening it again
std::vector<pid_t> g_deaf_threads;  // threads that never answered; not signalled again

static_assert(std::atomic<int>::is_always_lock_free, "signal handler needs lock-free atomics");
static_assert(std::atomic<bool>::is_always_lock_free, "signal handler needs lock-free atomics");

// Runs on any thread, in signal context: async-signal-safe calls and lock-free atomics only.
void OnSyncSignal(int) {
  int saved_errno = errno;
  if (g_active.load(std::memory_order_acquire)) {
    pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
    int n = g_slot_count.load(std::memory_order_acquire);
    for (int i = 0; i < n; i++) {
      if (g_slots[i].tid.load(std::memory_order_relaxed) != self) continue;
      int expected = kPending;
      int result = kDone;
      int fd = g_ruleset_fd.load(std::memory_order_acquire);
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        result = -errno;
      } else if (fd >= 0 && syscall(__NR_landlock_restrict_self, fd, 0) != 0) {
        result = -errno;
      }
      g_slots[i].result.compare_exchange_strong(expected, result, std::memory_order_acq_rel);
      break;
    }
  }
  errno = saved_errno;
}

bool InstallSignal() {
  if (g_signal != 0) return true;
  // A real-time signal nobody handles; the default action of those is to terminate, so the handler
  // is never removed (a signal still pending on a thread that blocked it must stay harmless).
  for (int sig = SIGRTMAX - 1; sig > SIGRTMIN + 2; sig--) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0) continue;
    if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = OnSyncSignal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(sig, &sa, nullptr) != 0) continue;
    g_signal = sig;
    return true;
  }
  return false;
}

// Thread ids of this process, from the kept /proc/self/task descriptor (getdents is not an
// access Landlock checks once the directory is open).
bool ListThreads(std::vector<pid_t>& out) {
  out.clear();
  if (g_task_dir < 0) {
    g_task_dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g_task_dir < 0) return false;
  }
  if (lseek(g_task_dir, 0, SEEK_SET) < 0) return false;
  alignas(8) char buf[8192];
  for (;;) {
    long n = syscall(SYS_getdents64, g_task_dir, buf, sizeof buf);
    if (n < 0) return false;
    if (n == 0) break;
    for (long off = 0; off < n;) {
      struct dirent64* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      char* end = nullptr;
      long tid = strtol(d->d_name, &end, 10);
      if (end != d->d_name && *end == '\0' && tid > 0) out.push_back(static_cast<pid_t>(tid));
    }
  }
  return true;
}

// 1 when the thread blocks `sig`, 0 when not, -1 when its status cannot be read.
int BlocksSignal(pid_t tid, int sig) {
  char path[64];
  snprintf(path, sizeof path, "%d/status", tid);
  Fd fd(openat(g_task_dir, path, O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return -1;
  char buf[4096];
  ssize_t n = read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* line = strstr(buf, "\nSigBlk:");
  if (line == nullptr) return -1;
  unsigned long long mask = strtoull(line + 8, nullptr, 16);
  return ((mask >> (sig - 1)) & 1ULL) != 0 ? 1 : 0;
}

bool Contains(const std::vector<pid_t>& v, pid_t x) {
  for (pid_t y : v) {
    if (y == x) return true;
  }
  return false;
}

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct SyncResult {
  int restricted = 0;    // sibling threads that applied no_new_privs and the ruleset
  int unrestricted = 0;  // sibling threads that could not be reached or failed
  int first_error = 0;
};

// Applies no_new_privs and the ruleset (when ruleset_fd >= 0) to every other thread of the process.
// `blocked_hint` holds, per tid, whether it blocks the signal, read before this thread was
// restricted (afterwards /proc/self/task/<tid>/status may be out of reach).
SyncResult RestrictSiblings(int ruleset_fd, const std::vector<std::pair<pid_t, int>>& blocked_hint) {
  SyncResult res;
  const pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
  const pid_t pid = getpid();
  std::vector<pid_t> seen;
  std::vector<pid_t> tids;
  g_ruleset_fd.store(ruleset_fd, std::memory_order_release);
  // New threads can appear while this runs; a thread started by a restricted one inherits its
  // domain, so repeat until a listing holds nothing new.
  for (int round = 0; round < 32; round++) {
    if (!ListThreads(tids)) {
      res.unrestricted++;
      res.first_error = res.first_error != 0 ? res.first_error : errno;
      break;
    }
    std::vector<pid_t> fresh;
    for (pid_t tid : tids) {
      if (tid != self && !Contains(seen, tid)) fresh.push_back(tid);
    }
    if (fresh.empty()) break;
    if (static_cast<int>(fresh.size()) > kMaxThreads) fresh.resize(kMaxThreads);

    g_active.store(false, std::memory_order_release);
    for (size_t i = 0; i < fresh.size(); i++) {
      g_slots[i].tid.store(fresh[i], std::memory_order_relaxed);
      g_slots[i].result.store(kPending, std::memory_order_relaxed);
    }
    g_slot_count.store(static_cast<int>(fresh.size()), std::memory_order_release);
    g_active.store(true, std::memory_order_release);

    for (size_t i = 0; i < fresh.size(); i++) {
      pid_t tid = fresh[i];
      int blocks = -1;
      for (const auto& hint : blocked_hint) {
        if (hint.first == tid) blocks = hint.second;
      }
      if (blocks < 0) blocks = BlocksSignal(tid, g_signal);
      if (blocks == 1 || Contains(g_deaf_threads, tid)) {
        if (blocks == 1 && !Contains(g_deaf_threads, tid)) g_deaf_threads.push_back(tid);
        int expected = kPending;
        g_slots[i].result.compare_exchange_strong(expected, kBlocked);
        continue;
      }
      if (syscall(SYS_tgkill, pid, tid, g_signal) != 0) {
        int expected = kPending;
        g_slots[i].result.compare_exchange_strong(expected, errno == ESRCH ? kGone : -errno);
      }
    }

    const int64_t deadline = NowMs() + 2000;
    for (;;) {
      bool pending = false;
      for (size_t i = 0; i < fresh.size(); i++) {
        if (g_slots[i].result.load(std::memory_order_acquire) != kPending) continue;
        if (syscall(SYS_tgkill, pid, fresh[i], 0) != 0 && errno == ESRCH) {
          int expected = kPending;
          g_slots[i].result.compare_exchange_strong(expected, kGone);
          continue;
        }
        pending = true;
      }
      if (!pending) break;
      if (NowMs() >= deadline) {
        for (size_t i = 0; i < fresh.size(); i++) {
          int expected = kPending;
          if (g_slots[i].result.compare_exchange_strong(expected, kTimedOut)) g_deaf_threads.push_back(fresh[i]);
        }
        break;
      }
      struct timespec ts = {0, 200 * 1000};
      nanosleep(&ts, nullptr);
    }
    g_active.store(false, std::memory_order_release);

    for (size_t i = 0; i < fresh.size(); i++) {
      int r = g_slots[i].result.load(std::memory_order_acquire);
      if (r == kDone) {
        res.restricted++;
      } else if (r != kGone) {
        res.unrestricted++;
        if (r < 0 && res.first_error == 0) res.first_error = -r;
      }
      seen.push_back(fresh[i]);
    }
  }
  g_slot_count.store(0, std::memory_order_release);
  g_ruleset_fd.store(-1, std::memory_order_release);
  return res;
}

// ---- JS entry points

std::vector<std::string> StringArray(Napi::Env env, Napi::Object rules, const char* key) {
  Napi::Value v = rules.Get(key);
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string("landlockRestrict: rules.") + key + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value item = a.Get(i);
    if (!item.IsString()) throw Napi::TypeError::New(env, std::string("landlockRestrict: rules.") + key + " must hold strings");
    std::string s = item.As<Napi::String>().Utf8Value();
    if (s.empty() || s.find('\0') != std::string::npos) {
      throw Napi::TypeError::New(env, std::string("landlockRestrict: rules.") + key + " holds an empty path or a NUL byte");
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<uint64_t> PortArray(Napi::Env env, Napi::Object rules, const char* key) {
  Napi::Value v = rules.Get(key);
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string("landlockRestrict: rules.") + key + " must be an array of ports");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<uint64_t> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value item = a.Get(i);
    double d = item.IsNumber() ? item.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 65535) || d != static_cast<double>(static_cast<uint64_t>(d))) {
      throw Napi::RangeError::New(env, std::string("landlockRestrict: rules.") + key + " must hold integers from 0 to 65535");
    }
    out.push_back(static_cast<uint64_t>(d));
  }
  return out;
}

void AddPathRules(Napi::Env env, int ruleset_fd, const std::vector<std::string>& paths, uint64_t rights, uint64_t handled) {
  for (const std::string& path : paths) {
    Fd fd(open(path.c_str(), O_PATH | O_CLOEXEC));
    if (fd.get() < 0) ThrowErrnoAt(env, errno, "open", path);
    struct stat st;
    if (fstat(fd.get(), &st) != 0) ThrowErrnoAt(env, errno, "fstat", path);
    PathBeneathAttr attr;
    attr.allowed_access = rights & handled;
    if (!S_ISDIR(st.st_mode)) attr.allowed_access &= kFsFileRights;
    attr.parent_fd = fd.get();
    if (attr.allowed_access == 0) continue;
    if (syscall(__NR_landlock_add_rule, ruleset_fd, kRulePathBeneath, &attr, 0) != 0) {
      ThrowErrnoAt(env, errno, "landlock_add_rule", path);
    }
  }
}

void AddPortRules(Napi::Env env, int ruleset_fd, const std::vector<uint64_t>& ports, uint64_t right) {
  for (uint64_t port : ports) {
    NetPortAttr attr;
    attr.allowed_access = right;
    attr.port = port;
    if (syscall(__NR_landlock_add_rule, ruleset_fd, kRuleNetPort, &attr, 0) != 0) {
      ThrowErrnoAt(env, errno, "landlock_add_rule", "port " + std::to_string(port));
    }
  }
}

Napi::Value LandlockAbi(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), QueryAbi());
}

// landlockRestrict({ readPaths, writePaths, execPaths, bindPorts, connectPorts, scopeSignals,
// scopeAbstractSockets }) -> { abi, handledAccessFs, handledAccessNet, scoped, threads,
// unrestrictedThreads }. Everything that can fail (bad input, missing path) throws before any
// restriction is applied.
Napi::Value LandlockRestrict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "landlockRestrict: rules must be an object");
  Napi::Object rules = info[0].As<Napi::Object>();
  std::vector<std::string> read_paths = StringArray(env, rules, "readPaths");
  std::vector<std::string> write_paths = StringArray(env, rules, "writePaths");
  std::vector<std::string> exec_paths = StringArray(env, rules, "execPaths");
  std::vector<uint64_t> bind_ports = PortArray(env, rules, "bindPorts");
  std::vector<uint64_t> connect_ports = PortArray(env, rules, "connectPorts");
  bool scope_signals = rules.Get("scopeSignals").ToBoolean().Value();
  bool scope_abstract = rules.Get("scopeAbstractSockets").ToBoolean().Value();

  std::lock_guard<std::mutex> lock(g_sync_mutex);
  const int abi = QueryAbi();
  RulesetAttr attr = {0, 0, 0};
  attr.handled_access_fs = HandledFs(abi);
  if (abi >= 4) attr.handled_access_net = kNetBindTcp | kNetConnectTcp;
  if (abi >= 6) {
    if (scope_abstract) attr.scoped |= kScopeAbstractUnixSocket;
    // Without erratum 2 (and without TSYNC) the per-thread domains made below could no longer
    // signal each other, which breaks V8's profiler and anything else using pthread_kill.
    if (scope_signals && (abi >= 8 || (QueryErrata() & kErratumSignalThreads) != 0)) attr.scoped |= kScopeSignal;
  }
  size_t attr_size = abi >= 6 ? sizeof(RulesetAttr) : abi >= 4 ? 2 * sizeof(uint64_t) : sizeof(uint64_t);

  Fd ruleset;
  if (abi >= 1) {
    ruleset.reset(static_cast<int>(syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0)));
    if (ruleset.get() < 0) ThrowErrnoAt(env, errno, "landlock_create_ruleset");
    AddPathRules(env, ruleset.get(), read_paths, kReadRights, attr.handled_access_fs);
    AddPathRules(env, ruleset.get(), write_paths, kWriteRights, attr.handled_access_fs);
    AddPathRules(env, ruleset.get(), exec_paths, kExecRights, attr.handled_access_fs);
    if (abi >= 4) {
      AddPortRules(env, ruleset.get(), bind_ports, kNetBindTcp);
      AddPortRules(env, ruleset.get(), connect_ports, kNetConnectTcp);
    }
  } else {
    attr = {0, 0, 0};
  }

  // Prepared before this thread is restricted: the status files may be unreadable afterwards.
  bool tsync = abi >= 8;
  std::vector<std::pair<pid_t, int>> blocked_hint;
  if (!tsync) {
    if (!InstallSignal()) ThrowErrnoAt(env, EAGAIN, "sigaction", "no free real-time signal");
    std::vector<pid_t> tids;
    if (ListThreads(tids)) {
      for (pid_t tid : tids) blocked_hint.emplace_back(tid, BlocksSignal(tid, g_signal));
    }
  }

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ThrowErrnoAt(env, errno, "prctl");
  if (ruleset.get() >= 0) {
    if (tsync && syscall(__NR_landlock_restrict_self, ruleset.get(), kRestrictSelfTsync) != 0) {
      if (errno != EINVAL) ThrowErrnoAt(env, errno, "landlock_restrict_self");
      tsync = false;
      if (!InstallSignal()) ThrowErrnoAt(env, EAGAIN, "sigaction", "no free real-time signal");
    }
    if (!tsync && syscall(__NR_landlock_restrict_self, ruleset.get(), 0) != 0) {
      ThrowErrnoAt(env, errno, "landlock_restrict_self");
    }
  }

  SyncResult sync;
  if (!tsync) sync = RestrictSiblings(ruleset.get(), blocked_hint);

  Napi::Object result = Napi::Object::New(env);
  result.Set("abi", Napi::Number::New(env, abi));
  result.Set("handledAccessFs", Napi::Number::New(env, static_cast<double>(attr.handled_access_fs)));
  result.Set("handledAccessNet", Napi::Number::New(env, static_cast<double>(attr.handled_access_net)));
  result.Set("scoped", Napi::Number::New(env, static_cast<double>(attr.scoped)));
  // -1: all threads at once (TSYNC), count unknown.
  result.Set("threads", Napi::Number::New(env, tsync ? -1 : sync.restricted + 1));
  result.Set("unrestrictedThreads", Napi::Number::New(env, tsync ? 0 : sync.unrestricted));
  if (sync.first_error != 0) {
    const char* code = strerrorname_np(sync.first_error);
    result.Set("threadError", Napi::String::New(env, code != nullptr ? code : strerror(sync.first_error)));
  }
  return result;
}

}  // namespace

void InitLandlock(Napi::Env env, Napi::Object exports) {
  exports.Set("landlockAbi", Napi::Function::New(env, LandlockAbi, "landlockAbi"));
  exports.Set("landlockRestrict", Napi::Function::New(env, LandlockRestrict, "landlockRestrict"));
}
