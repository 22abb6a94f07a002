// Module init, the per-environment state and descriptor table, and error helpers.
// Everything here runs on the JS thread of the environment concerned, except the descriptor
// table, which all environments of the process share under TableMutex().
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#ifndef __linux__
#include <dlfcn.h>
#endif
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <atomic>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace eic {
namespace {

std::atomic<uint32_t> g_next_env_id{1};

// owner[fd] = id of the environment that owns fd, 0 for none. Heap-allocated and never freed
// so that a worker's teardown cannot race static destruction at process exit.
std::mutex& TableMutex() {
  static std::mutex* m = new std::mutex;
  return *m;
}
// owners[fd]: the owning environment's id in the low 30 bits, the FdOrigin in the top 2.
std::vector<uint32_t>& Owners() {
  static std::vector<uint32_t>* v = new std::vector<uint32_t>;
  return *v;
}
constexpr uint32_t kIdMask = (1u << 30) - 1;
inline uint32_t OwnerId(uint32_t entry) { return entry & kIdMask; }
inline FdOrigin EntryOrigin(uint32_t entry) { return static_cast<FdOrigin>(entry >> 30); }
inline uint32_t Entry(uint32_t id, FdOrigin origin) { return id | (static_cast<uint32_t>(origin) << 30); }

void SetOwnerLocked(int fd, uint32_t id) {
  std::vector<uint32_t>& owners = Owners();
  if (static_cast<size_t>(fd) >= owners.size()) {
    if (id == 0) return;
    owners.resize(std::max<size_t>(static_cast<size_t>(fd) + 1, owners.size() * 2 + 64), 0);
  }
  owners[fd] = id;
}

// Runs on the JS thread while the environment is torn down (after JS has stopped): closes the
// pollers first (their epoll registrations must go while the fds are open), then the fds.
// Node keeps running the loop until napi_remove_async_cleanup_hook, so the uv close callbacks run.
void OnTeardown(napi_async_cleanup_hook_handle handle, void* arg) {
  EnvState* s = static_cast<EnvState*>(arg);
  s->tornDown = true;
  std::vector<PollHandle*> open;
  open.reserve(s->pollers.size());
  for (auto& entry : s->pollers) open.push_back(entry.second);
  for (PollHandle* h : open) ClosePollHandle(h);
  FreeStreams(s);

  std::vector<std::pair<int, FdOrigin>> fds;
  {
    std::lock_guard<std::mutex> lock(TableMutex());
    std::vector<uint32_t>& owners = Owners();
    for (size_t fd = 0; fd < owners.size(); fd++) {
      if (owners[fd] != 0 && OwnerId(owners[fd]) == s->id) {
        fds.emplace_back(static_cast<int>(fd), EntryOrigin(owners[fd]));
        owners[fd] = 0;
      }
    }
  }
  // The environment's descriptors may include peer-chosen ones whose close could block (a
  // lingering TCP socket, a FUSE file): those go to the closer thread like any other close.
  for (const auto& fd : fds) CloseQuietly(fd.first, fd.second);

  if (s->liveHandles == 0) {
    napi_remove_async_cleanup_hook(handle);
    Release(s);
  } else {
    s->cleanupHook = handle;
  }
}

void FinalizeState(napi_env env, void* data, void* hint) { Release(static_cast<EnvState*>(data)); }

}  // namespace

// code is the errno's name from ErrnoName (libuv's table lacks some, e.g. ETOOMANYREFS), else
// "E<number>". The properties are set with raw calls whose failure is ignored: while the
// environment terminates they fail, and the error must still be the one thrown (the wrapper of
// the native call then drops it, NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS).
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall) {
  const char* known = ErrnoName(err);
  std::string name = known != nullptr ? known : "E" + std::to_string(err);
  // Node's wording ("bad file descriptor") where libuv knows the errno, the C library's otherwise.
  const char* text = uv_strerror(-err);
  if (strncmp(text, "Unknown system error", 20) == 0) text = strerror(err);
  std::string message = name + ": " + text + ", " + syscall;
  Napi::Error error = Napi::Error::New(env, message);
  napi_value obj = error.Value();
  napi_value v;
  if (napi_create_string_utf8(env, name.c_str(), name.size(), &v) == napi_ok) napi_set_named_property(env, obj, "code", v);
  if (napi_create_int32(env, err, &v) == napi_ok) napi_set_named_property(env, obj, "errno", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, "syscall", v);
  throw error;
}

[[noreturn]] void ThrowTypeError(Napi::Env env, const char* message) { throw Napi::TypeError::New(env, message); }

[[noreturn]] void ThrowRangeError(Napi::Env env, const char* message) { throw Napi::RangeError::New(env, message); }

[[noreturn]] void ThrowPending(Napi::Env env, napi_status status) { throw Napi::Error::New(env); }

int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  double d;
  if (napi_get_value_double(info.Env(), info[i], &d) != napi_ok) ThrowTypeError(info.Env(), "fd must be a number");
  if (!(d >= 0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int>(d))) {
    ThrowTypeError(info.Env(), "fd must be an integer >= 0");
  }
  return static_cast<int>(d);
}

EnvState* State(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<EnvState*>(data);
}

void Retain(EnvState* s) { s->refs++; }

void Release(EnvState* s) {
  if (--s->refs > 0) return;
  FreeStreams(s);
  delete s;
}

void PollHandleFreed(EnvState* s) {
  s->liveHandles--;
  if (s->liveHandles == 0 && s->cleanupHook != nullptr) {
    napi_async_cleanup_hook_handle hook = s->cleanupHook;
    s->cleanupHook = nullptr;
    napi_remove_async_cleanup_hook(hook);
    s->refs--;  // the hook's; this handle's reference keeps `s` alive until the next line
  }
  Release(s);
}

void RegisterFd(napi_env env, int fd, FdOrigin origin) { RegisterFds(env, &fd, 1, origin); }

void RegisterFds(napi_env env, const int* fds, int count, FdOrigin origin) {
  if (count <= 0) return;
  EnvState* s = State(env);
  // A number that comes back (closed outside the addon, or owned by another environment since)
  // names a new file: framing state kept under it belongs to the old one.
  if (!s->streams.empty()) for (int i = 0; i < count; i++) ForgetStream(s, fds[i]);
  uint32_t entry = Entry(s->id, origin);
  std::lock_guard<std::mutex> lock(TableMutex());
  for (int i = 0; i < count; i++) SetOwnerLocked(fds[i], entry);
}

FdOrigin OriginOf(napi_env env, int fd) {
  uint32_t id = State(env)->id;
  std::lock_guard<std::mutex> lock(TableMutex());
  std::vector<uint32_t>& owners = Owners();
  if (fd < 0 || static_cast<size_t>(fd) >= owners.size() || owners[fd] == 0 || OwnerId(owners[fd]) != id) return FdOrigin::kUnknown;
  return EntryOrigin(owners[fd]);
}

void NoteCloseCannotWait(napi_env env, int fd) {
  uint32_t id = State(env)->id;
  std::lock_guard<std::mutex> lock(TableMutex());
  std::vector<uint32_t>& owners = Owners();
  if (fd < 0 || static_cast<size_t>(fd) >= owners.size() || owners[fd] != Entry(id, FdOrigin::kUnknown)) return;
  owners[fd] = Entry(id, FdOrigin::kCloseCannotWait);
}

void UnregisterFd(napi_env env, int fd) {
  EnvState* s = State(env);
  if (!s->pollers.empty()) {
    auto it = s->pollers.find(fd);
    if (it != s->pollers.end()) ClosePollHandle(it->second);
  }
  if (!s->streams.empty()) ForgetStream(s, fd);
  std::lock_guard<std::mutex> lock(TableMutex());
  SetOwnerLocked(fd, 0);
}

int CloseFd(napi_env env, int fd) {
  // Only a descriptor this environment owns is closed: a stale number (closed before, maybe
  // reused since by another thread, libuv or Node) must never close someone else's descriptor.
  FdOrigin origin;
  {
    EnvState* s = State(env);
    std::lock_guard<std::mutex> lock(TableMutex());
    std::vector<uint32_t>& owners = Owners();
    if (fd < 0 || static_cast<size_t>(fd) >= owners.size() || owners[fd] == 0 || OwnerId(owners[fd]) != s->id) {
      return EBADF;
    }
    origin = EntryOrigin(owners[fd]);
  }
  UnregisterFd(env, fd);
  return CloseQuietly(fd, origin);
}

size_t OpenCount(napi_env env) {
  uint32_t id = State(env)->id;
  size_t n = 0;
  std::lock_guard<std::mutex> lock(TableMutex());
  for (uint32_t owner : Owners()) n += owner != 0 && OwnerId(owner) == id;
  return n;
}

}  // namespace eic

namespace {

#ifndef __linux__
// The addon must never be unmapped: Node dlcloses it when the last worker that loaded it ends,
// but the closer thread (closer.cc) outlives that worker. Linux links it with -z nodelete; ld64
// has no such flag, so the first Init marks its own image RTLD_NODELETE (dlopen of an image
// already loaded, RTLD_NOLOAD). Failure leaves the image as it was: nothing to report.
void PinImage() {
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info image;
    if (dladdr(reinterpret_cast<void*>(&PinImage), &image) != 0 && image.dli_fname != nullptr) {
      dlopen(image.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
    }
  });
}
#endif

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifndef __linux__
  PinImage();
#endif
  auto* s = new eic::EnvState;
  s->id = eic::g_next_env_id.fetch_add(1);
  s->refs = 2;  // instance data + cleanup hook
  if (napi_get_uv_event_loop(env, &s->loop) != napi_ok) {
    delete s;
    eic::ThrowPending(env, napi_generic_failure);
  }
  if (napi_set_instance_data(env, s, eic::FinalizeState, nullptr) != napi_ok) {
    delete s;
    eic::ThrowPending(env, napi_generic_failure);
  }
  if (napi_add_async_cleanup_hook(env, eic::OnTeardown, s, nullptr) != napi_ok) {
    eic::Release(s);
    eic::ThrowPending(env, napi_generic_failure);
  }
  eic::InitChannel(env, exports);
#ifdef __linux__
  eic::InitSeqpacket(env, exports);
#endif
  eic::InitShm(env, exports);
  eic::InitStream(env, exports);
  eic::InitCloser(env, exports);
#ifdef __linux__
  InitLandlock(env, exports);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(electron_ipc_channel, Init)
