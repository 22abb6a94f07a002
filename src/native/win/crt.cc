// node.exe's C runtime descriptors (what fs.openSync returns), for IpcFileHandle. node.exe links
// its C runtime statically, so the addon's own runtime (msvcrt or ucrt) has another descriptor
// table: the descriptors are reached through libuv, which node.exe (and electron.exe) export:
// uv_get_osfhandle, uv_open_osfhandle, and uv_fs_close (synchronous without a callback).
// Looked up once in the host executable (GetModuleHandle(nullptr)).
#include "win.h"

namespace eicch {

namespace {

using GetOsfhandle = HANDLE (*)(int);
using OpenOsfhandle = int (*)(HANDLE);
using FsClose = int (*)(void* loop, void* req, int file, void* cb);
using FsReqCleanup = void (*)(void* req);

struct Uv {
  GetOsfhandle get = nullptr;
  OpenOsfhandle open = nullptr;
  FsClose close = nullptr;
  FsReqCleanup cleanup = nullptr;
};

const Uv& U() {
  static Uv uv = [] {
    Uv u;
    HMODULE host = GetModuleHandleW(nullptr);
    u.get = reinterpret_cast<GetOsfhandle>(reinterpret_cast<void*>(GetProcAddress(host, "uv_get_osfhandle")));
    u.open = reinterpret_cast<OpenOsfhandle>(reinterpret_cast<void*>(GetProcAddress(host, "uv_open_osfhandle")));
    u.close = reinterpret_cast<FsClose>(reinterpret_cast<void*>(GetProcAddress(host, "uv_fs_close")));
    u.cleanup = reinterpret_cast<FsReqCleanup>(reinterpret_cast<void*>(GetProcAddress(host, "uv_fs_req_cleanup")));
    return u;
  }();
  return uv;
}

}  // namespace

HANDLE CrtHandle(int fd) {
  if (fd < 0 || U().get == nullptr) return INVALID_HANDLE_VALUE;
  HANDLE h = U().get(fd);
  return h == nullptr ? INVALID_HANDLE_VALUE : h;
}

int CrtOpen(HANDLE h) {
  if (U().open == nullptr) return -1;
  int fd = U().open(h);
  return fd >= kIdBase ? -1 : fd;  // never reached: descriptors are small
}

int CrtClose(napi_env env, int fd) {
  if (U().close == nullptr || CrtHandle(fd) == INVALID_HANDLE_VALUE) return -1;
  uv_loop_s* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  // uv_fs_t is about 440 bytes on x64 Windows; this is room to spare, suitably aligned.
  alignas(16) unsigned char req[2048] = {};
  int r = U().close(loop, req, fd, nullptr);
  if (U().cleanup != nullptr) U().cleanup(req);
  return r;
}

}  // namespace eicch
