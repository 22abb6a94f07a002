// Shared memory: fill, map, detach (every POSIX system), memfd create + seal (Linux only, the
// seqpacket transport), and the stream transport's POSIX shm_open objects without seals (create,
// copy out, access mode; every POSIX system). Every function runs on the JS thread that calls it;
// a mapping's finalizer runs on that thread too.
//
// Close-on-exec race (macOS, whose shm_open has no O_CLOEXEC): see src/native/sockets.cc.
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdio.h>

#include <atomic>
#include <random>
#include <string>

#if defined(__linux__) && !defined(F_GET_SEALS)
#define F_GET_SEALS 1034
#endif
#if defined(__linux__) && !defined(F_SEAL_FUTURE_WRITE)
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

namespace eic {
namespace {

// The most bytes mapFd maps (zero-copy mode): the 47-bit user address space on x86-64 is 128 TiB.
constexpr int64_t kMaxMapBytes = int64_t{1} << 46;

// -1 unknown, 0 no, 1 yes. The answer is a property of the runtime, the same for every thread.
std::atomic<int> g_external_allowed{-1};

bool ExternalAllowed(napi_env env) {
  int known = g_external_allowed.load(std::memory_order_relaxed);
  if (known >= 0) return known == 1;
  static char probe[8];
  napi_value ab;
  napi_status status = napi_create_external_arraybuffer(env, probe, sizeof probe, nullptr, nullptr, &ab);
  if (status != napi_ok && status != napi_no_external_buffers_allowed) ThrowPending(env, status);
  bool allowed = status == napi_ok;
  g_external_allowed.store(allowed ? 1 : 0, std::memory_order_relaxed);
  return allowed;
}

void Unmap(napi_env env, void* data, void* hint) { munmap(data, reinterpret_cast<size_t>(hint)); }

#ifdef __linux__
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowTypeError(env, "name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.find('\0') != std::string::npos) ThrowTypeError(env, "name must not contain NUL characters");
  int64_t size = ArgSize(info, 1, "size must be an integer >= 0");
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) ThrowErrno(env, errno, "memfd_create");
  RegisterFd(env, fd, FdOrigin::kSharedMemory);
  if (size > 0 && ftruncate(fd, size) != 0) {
    int err = errno;
    CloseFd(env, fd);
    ThrowErrno(env, err, "ftruncate");
  }
  return Napi::Number::New(env, fd);
}
#endif  // __linux__

Napi::Value Pwrite(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_typedarray_info(env, info[1], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    ThrowTypeError(env, "data must be a Uint8Array");
  }
  int64_t offset = ArgSize(info, 2, "offset must be an integer >= 0");
  const char* p = static_cast<const char*>(data);
  while (length > 0) {
    ssize_t n = pwrite(fd, p, length, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, errno, "pwrite");
    }
    if (n == 0) ThrowErrno(env, EIO, "pwrite");
    p += n;
    length -= static_cast<size_t>(n);
    offset += n;
  }
  return info.Env().Undefined();
}

#ifdef __linux__
Napi::Value AddSeals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  int64_t seals = ArgSize(info, 1, "seals must be an integer >= 0");
  if (seals > INT32_MAX) ThrowRangeError(env, "seals must be a combination of F_SEAL_* bits");
  if (fcntl(fd, F_ADD_SEALS, static_cast<int>(seals)) != 0) ThrowErrno(env, errno, "fcntl");
  return env.Undefined();
}
#endif  // __linux__

// Reads `length` bytes from offset 0 into a new ArrayBuffer. pread rather than mmap + memcpy:
// a file that shrinks meanwhile gives a short read, not SIGBUS.
Napi::Value CopyOut(napi_env env, int fd, size_t length, bool writable) {
  if (writable) {
    // Refuse what a writable mapping would refuse, so both paths fail alike.
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) ThrowErrno(env, errno, "fcntl");
    if ((fl & O_ACCMODE) != O_RDWR) ThrowErrno(env, EACCES, "mmap");
#ifdef __linux__
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals > 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0) ThrowErrno(env, EPERM, "mmap");
#endif
  }
  if (static_cast<int64_t>(length) > kMaxCopyBytes) ThrowTooLarge(env, static_cast<int64_t>(length));
  void* data = nullptr;
  napi_value ab = NewArrayBuffer(env, length, &data);
  char* p = static_cast<char*>(data);
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, p + done, length - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, errno, "pread");
    }
    if (n == 0) ThrowRangeError(env, "length exceeds the size of the file");
    done += static_cast<size_t>(n);
  }
  return Napi::Value(env, ab);
}

Napi::Value MapFd(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  int64_t length = ArgSize(info, 1, "length must be an integer >= 0");
  bool writable = info[2].ToBoolean().Value();
  bool copy = info[3].ToBoolean().Value();
  // Fault every page in at once (one call instead of a fault per 4 KiB on first touch).
  bool populate = info.Length() > 4 && info[4].ToBoolean().Value();
  napi_value ab;
  if (length == 0) {
    void* data;
    napi_status status = napi_create_arraybuffer(env, 0, &data, &ab);
    if (status != napi_ok) ThrowPending(env, status);
    return Napi::Value(env, ab);
  }
  // Touching a MAP_SHARED page beyond the end of the file raises SIGBUS, and a peer may hand a
  // file that is not shared memory at all: its size comes from StatNoWait (Linux:
  // statx(AT_STATX_DONT_SYNC), which does not wait on a FUSE or NFS server the way fstat would).
  mode_t mode = 0;
  int64_t fileSize = 0;
  int err = StatNoWait(fd, &mode, &fileSize);
  if (err != 0) ThrowErrno(env, err, kStatNoWaitCall);
  if (length > fileSize) ThrowRangeError(env, "length exceeds the size of the file");
  if (copy || !ExternalAllowed(env)) return CopyOut(env, fd, static_cast<size_t>(length), writable);
  if (length > kMaxMapBytes) ThrowTooLarge(env, length);

  size_t size = static_cast<size_t>(length);
  // A read-only view is still mapped writable, but private (copy-on-write): JS cannot tell a
  // read-only ArrayBuffer from another, and a store into PROT_READ memory would kill the process.
  // Stores change only this process's pages, never the file.
#ifdef MAP_POPULATE
  int flags = (writable ? MAP_SHARED : MAP_PRIVATE) | (populate ? MAP_POPULATE : 0);
#else
  int flags = writable ? MAP_SHARED : MAP_PRIVATE;
#endif
  void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (addr == MAP_FAILED) ThrowErrno(env, errno, "mmap");
#ifndef MAP_POPULATE
  // macOS has no MAP_POPULATE; a read-ahead hint is the nearest thing (failure changes nothing).
  if (populate) madvise(addr, size, MADV_WILLNEED);
#endif
  napi_status status = napi_create_external_arraybuffer(env, addr, size, Unmap, reinterpret_cast<void*>(size), &ab);
  if (status == napi_ok) return Napi::Value(env, ab);
  munmap(addr, size);
  if (status != napi_no_external_buffers_allowed) ThrowPending(env, status);
  g_external_allowed.store(0, std::memory_order_relaxed);
  return CopyOut(env, fd, size, writable);
}

// detachBuffer(arrayBuffer): detaches it (every view of it reads as empty from then on); for a
// mapping, V8 then releases the backing store, whose finalizer unmaps it.
Napi::Value DetachBuffer(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  bool is = false;
  if (napi_is_arraybuffer(env, info[0], &is) != napi_ok || !is) ThrowTypeError(env, "detachBuffer takes an ArrayBuffer");
  bool detached = false;
  napi_status status = napi_is_detached_arraybuffer(env, info[0], &detached);
  if (status != napi_ok) ThrowPending(env, status);
  if (!detached) {
    status = napi_detach_arraybuffer(env, info[0]);
    if (status != napi_ok) ThrowPending(env, status);
  }
  return info.Env().Undefined();
}

// aliasBuffer(mapping): a second ArrayBuffer over the memory of an external ArrayBuffer (a
// mapping from mapFd), without a finalizer: detaching it leaves the mapping alone. The caller
// keeps `mapping` alive for as long as the alias is attached.
Napi::Value AliasBuffer(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  bool is = false;
  if (napi_is_arraybuffer(env, info[0], &is) != napi_ok || !is) ThrowTypeError(env, "aliasBuffer takes an ArrayBuffer");
  void* data = nullptr;
  size_t length = 0;
  napi_status status = napi_get_arraybuffer_info(env, info[0], &data, &length);
  if (status != napi_ok) ThrowPending(env, status);
  napi_value ab;
  status = napi_create_external_arraybuffer(env, data, length, nullptr, nullptr, &ab);
  if (status != napi_ok) ThrowPending(env, status);
  return Napi::Value(env, ab);
}

Napi::Value ExternalBuffersAllowed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), ExternalAllowed(info.Env()));
}

// ---- shared memory without seals

[[noreturn]] void ThrowCoded(napi_env env, const char* code, const std::string& text, const char* syscall) {
  Napi::Error error = Napi::Error::New(env, std::string(code) + ": " + text + ", " + syscall);
  napi_value obj = error.Value();
  napi_value v;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, "code", v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, "syscall", v);
  throw error;
}

[[noreturn]] void ThrowTruncated(napi_env env, int64_t length, int64_t size) {
  ThrowCoded(env, "ETRUNCATED",
             "shared memory shorter than announced (" + std::to_string(size) + " of " + std::to_string(length) +
                 " bytes: its other holder truncated it)",
             "pread");
}

// shmCreate(size): [rwFd, roFd] of one new POSIX shared memory object of `size` bytes, already
// unlinked, so the two descriptors (and what they are sent to) are its only references.
Napi::Value ShmCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t size = ArgSize(info, 0, "size must be an integer >= 0");
  // macOS allows 31 characters (PSHMNAMLEN); "/eic-" and 16 hex digits are 21. The name exists
  // from O_CREAT to shm_unlink, microseconds; a process of the same user that guesses 64 random
  // bits in that window could open it (it could also ptrace this one).
  static std::random_device* random = new std::random_device;
  char name[32];
  int rw = -1;
  for (int attempt = 0; attempt < 16 && rw < 0; attempt++) {
    uint64_t bits = (static_cast<uint64_t>((*random)()) << 32) ^ (*random)();
    snprintf(name, sizeof name, "/eic-%016llx", static_cast<unsigned long long>(bits));
    rw = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (rw < 0 && errno != EEXIST) ThrowErrno(env, errno, "shm_open");
  }
  if (rw < 0) ThrowErrno(env, EEXIST, "shm_open");
  RegisterFd(env, rw, FdOrigin::kSharedMemory);
  FdGuard rwGuard(env, rw);
  int ro = shm_open(name, O_RDONLY, 0);
  int err = ro < 0 ? errno : 0;
  if (ro >= 0) RegisterFd(env, ro, FdOrigin::kSharedMemory);
  FdGuard roGuard(env, ro);
  if (shm_unlink(name) != 0 && err == 0 && errno != ENOENT) err = errno;
  if (err != 0) ThrowErrno(env, err, ro < 0 ? "shm_open" : "shm_unlink");
#ifndef __linux__
  // glibc's shm_open always adds O_CLOEXEC; elsewhere see the race in sockets.cc.
  if ((err = SetCloexec(rw)) != 0 || (err = SetCloexec(ro)) != 0) ThrowErrno(env, err, "fcntl");
#endif
  // macOS sizes an object once (a second ftruncate fails), so a size of 0 is left unset.
  if (size > 0 && ftruncate(rw, static_cast<off_t>(size)) != 0) ThrowErrno(env, errno, "ftruncate");
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, rwGuard.release()));
  pair.Set(1u, Napi::Number::New(env, roGuard.release()));
  return pair;
}

// readAll(fd, length): the first `length` bytes of a shared memory object, copied into a new
// ArrayBuffer. A copy, not a mapping: without seals the sender keeps the power to truncate the
// object, and a mapping of a truncated file faults (SIGBUS) on the pages past its new end.
// Linux: pread of a shmem file (F_GET_SEALS answers only for tmpfs, memfd and hugetlbfs, whose
// reads never wait on another process; anything else is refused with EINVAL, so a FUSE or NFS
// file cannot make this thread wait for its server). macOS: POSIX shared memory objects refuse
// read(2) (ENOTSUP), so they are mapped and copied, which is safe there: an object's size is set
// once and can never shrink.
Napi::Value ReadAll(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  int fd = ArgFd(info, 0);
  int64_t length = ArgSize(info, 1, "length must be an integer >= 0");
  if (length > kMaxCopyBytes) ThrowTooLarge(env, length);
  struct stat st;
#if defined(__linux__)
  if (fcntl(fd, F_GET_SEALS) < 0) {
    if (errno == EINVAL) ThrowCoded(env, "EINVAL", "the descriptor is not shared memory", "readAll");
    ThrowErrno(env, errno, "fcntl");
  }
#endif
  if (fstat(fd, &st) != 0) ThrowErrno(env, errno, "fstat");
#if defined(__APPLE__)
  // A POSIX shared memory object has no file type bits in st_mode (pshm_stat).
  if ((st.st_mode & S_IFMT) != 0) ThrowCoded(env, "EINVAL", "the descriptor is not shared memory", "readAll");
#endif
  if (static_cast<int64_t>(st.st_size) < length) ThrowTruncated(env, length, static_cast<int64_t>(st.st_size));
  void* data = nullptr;
  napi_value ab = NewArrayBuffer(env, static_cast<size_t>(length), &data);
  if (length == 0) return Napi::Value(env, ab);
#if defined(__APPLE__)
  void* addr = mmap(nullptr, static_cast<size_t>(length), PROT_READ, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) ThrowErrno(env, errno, "mmap");
  memcpy(data, addr, static_cast<size_t>(length));
  munmap(addr, static_cast<size_t>(length));
#else
  char* p = static_cast<char*>(data);
  size_t done = 0;
  while (done < static_cast<size_t>(length)) {
    ssize_t r = pread(fd, p + done, static_cast<size_t>(length) - done, static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, errno, "pread");
    }
    if (r == 0) ThrowTruncated(env, length, static_cast<int64_t>(done));
    done += static_cast<size_t>(r);
  }
#endif
  return Napi::Value(env, ab);
}

Napi::Value AccessMode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fl = fcntl(ArgFd(info, 0), F_GETFL);
  if (fl < 0) ThrowErrno(env, errno, "fcntl");
  switch (fl & O_ACCMODE) {
    case O_RDONLY:
      return Napi::String::New(env, "r");
    case O_WRONLY:
      return Napi::String::New(env, "w");
    case O_RDWR:
      return Napi::String::New(env, "rw");
    default:
      ThrowErrno(env, EINVAL, "fcntl");
  }
}

}  // namespace

void InitShm(Napi::Env env, Napi::Object exports) {
#ifdef __linux__
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
#endif
  exports.Set("pwrite", Napi::Function::New(env, Pwrite, "pwrite"));
#ifdef __linux__
  exports.Set("addSeals", Napi::Function::New(env, AddSeals, "addSeals"));
#endif
  exports.Set("mapFd", Napi::Function::New(env, MapFd, "mapFd"));
  exports.Set("detachBuffer", Napi::Function::New(env, DetachBuffer, "detachBuffer"));
  exports.Set("aliasBuffer", Napi::Function::New(env, AliasBuffer, "aliasBuffer"));
  exports.Set("externalBuffersAllowed", Napi::Function::New(env, ExternalBuffersAllowed, "externalBuffersAllowed"));
}

// The stream transport's shared memory (its `stream` object): shmCreate, readAll, accessMode.
void InitStreamShm(Napi::Env env, Napi::Object stream) {
  stream.Set("shmCreate", Napi::Function::New(env, ShmCreate, "shmCreate"));
  stream.Set("readAll", Napi::Function::New(env, ReadAll, "readAll"));
  stream.Set("accessMode", Napi::Function::New(env, AccessMode, "accessMode"));
}

}  // namespace eic
