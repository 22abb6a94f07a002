// Shared memory of the win32 transport: pagefile-backed sections (CreateFileMapping). An
// immutable block (IpcSharedMemory) is made writable, filled, then only a read-only duplicate
// (SECTION_MAP_READ | SECTION_QUERY) is kept and sent: nobody holds a writable handle after that.
// A received section is checked by trying a writable view (refused for a read-only handle, also
// under Wine: error 5) and is always read by copy. A section's size is fixed at creation, so a
// view can never fault the way a truncated POSIX file can; file-backed and image sections (whose
// views can fault on I/O errors) are refused. The system reports sizes rounded up to pages, so
// every section starts with a 16-byte header, "EICSHM01" and the exact length (u64 LE), read once
// when a section arrives and bounded by the section's size. Sections are table entries
// (End::section) of the same id space as pipe ends. JS thread only.
#include "win.h"

#include <winternl.h>

#include <string.h>

namespace eicch {

namespace {

constexpr uint64_t kShmHead = 16;
constexpr char kShmMagic[8] = {'E', 'I', 'C', 'S', 'H', 'M', '0', '1'};
constexpr ULONG kSecFile = 0x800000;
constexpr ULONG kSecImage = 0x1000000;

struct SectionBasic {
  PVOID base;
  ULONG attributes;
  LARGE_INTEGER size;
};
using NtQuerySectionFn = NTSTATUS(NTAPI*)(HANDLE, int, PVOID, SIZE_T, PSIZE_T);

End* GetSection(State* s, Napi::Env env, const Napi::Value& v) {
  End* e = GetEnd(s, env, v);
  if (!e->section) throw Napi::TypeError::New(env, "not a shared memory section");
  return e;
}

// A view of [offset, offset + length) (offset rounded down to the allocation granularity).
struct View {
  void* base = nullptr;
  uint8_t* at = nullptr;
  ~View() {
    if (base != nullptr) UnmapViewOfFile(base);
  }
};

bool MapRange(HANDLE h, DWORD access, uint64_t offset, size_t length, View* v) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  uint64_t start = offset - offset % si.dwAllocationGranularity;
  v->base = MapViewOfFile(h, access, static_cast<DWORD>(start >> 32), static_cast<DWORD>(start), static_cast<SIZE_T>(offset - start + length));
  if (v->base == nullptr) return false;
  v->at = static_cast<uint8_t*>(v->base) + (offset - start);
  return true;
}

// sectionCreate(size) -> id of a new writable section of `size` bytes (at least 1).
Napi::Value SectionCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  double size = info[0].As<Napi::Number>().DoubleValue();
  if (!(size >= 0) || size > 9007199254740991.0 || size != static_cast<uint64_t>(size)) {
    throw Napi::RangeError::New(env, "a section needs a whole number of bytes");
  }
  uint64_t n = static_cast<uint64_t>(size) + kShmHead;
  HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, nullptr, PAGE_READWRITE, static_cast<DWORD>(n >> 32), static_cast<DWORD>(n), nullptr);
  if (h == nullptr) ThrowWin(env, GetLastError(), "CreateFileMappingW");
  {
    View v;
    if (!MapRange(h, FILE_MAP_WRITE, 0, kShmHead, &v)) {
      DWORD err = GetLastError();
      CloseHandle(h);
      ThrowWin(env, err, "MapViewOfFile");
    }
    uint64_t len = n - kShmHead;
    memcpy(v.at, kShmMagic, 8);
    memcpy(v.at + 8, &len, 8);
  }
  n -= kShmHead;
  End* e = NewEnd(s, h, false);
  e->section = true;
  e->size = n;
  return Napi::Number::New(env, e->id);
}

// sectionReadOnly(id) -> id of a read-only duplicate (map for reading, query; nothing else).
Napi::Value SectionReadOnly(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  End* e = GetSection(s, env, info[0]);
  HANDLE d = nullptr;
  if (!DuplicateHandle(GetCurrentProcess(), e->h, GetCurrentProcess(), &d, SECTION_MAP_READ | SECTION_QUERY, FALSE, 0)) {
    ThrowWin(env, GetLastError(), "DuplicateHandle");
  }
  End* r = NewEnd(s, d, false);
  r->section = true;
  r->size = e->size;
  return Napi::Number::New(env, r->id);
}

// sectionWrite(id, bytes, offset): copies bytes into the section (a writable handle).
Napi::Value SectionWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  End* e = GetSection(StateOf(info), env, info[0]);
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  double off = info[2].As<Napi::Number>().DoubleValue();
  if (!(off >= 0) || off + bytes.ByteLength() > static_cast<double>(e->size)) {
    throw Napi::RangeError::New(env, "sectionWrite: beyond the end of the section");
  }
  if (bytes.ByteLength() == 0) return env.Undefined();
  View v;
  if (!MapRange(e->h, FILE_MAP_WRITE, kShmHead + static_cast<uint64_t>(off), bytes.ByteLength(), &v)) ThrowWin(env, GetLastError(), "MapViewOfFile");
  memcpy(v.at, bytes.Data(), bytes.ByteLength());
  return env.Undefined();
}

// sectionRead(id, length) -> a copy of the first `length` bytes (RangeError beyond the size).
Napi::Value SectionRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  End* e = GetSection(StateOf(info), env, info[0]);
  double length = info[1].As<Napi::Number>().DoubleValue();
  if (!(length >= 0) || length > static_cast<double>(e->size) || length > 4294967296.0) {
    throw Napi::RangeError::New(env, "sectionRead: beyond the end of the section");
  }
  size_t n = static_cast<size_t>(length);
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, n);
  if (n == 0) return out;
  View v;
  if (!MapRange(e->h, FILE_MAP_READ, kShmHead, n, &v)) ThrowWin(env, GetLastError(), "MapViewOfFile");
  memcpy(out.Data(), v.at, n);
  return out;
}

// sectionWritable(id): whether this handle allows a writable view (an immutable block's must not).
Napi::Value SectionWritable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  End* e = GetSection(StateOf(info), env, info[0]);
  View v;
  return Napi::Boolean::New(env, MapRange(e->h, FILE_MAP_WRITE, 0, 1, &v));
}

// detachBuffer(arrayBuffer): detaches it (every view of it reads as empty from then on): a pool
// segment's staging copy once the segment is sent, a received copy once closed. Nothing here is
// a mapping (received memory is copied), so nothing is unmapped.
Napi::Value DetachBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "detachBuffer takes an ArrayBuffer");
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, info[0], &detached) != napi_ok) throw Napi::Error::New(env, "napi_is_detached_arraybuffer failed");
  if (!detached && napi_detach_arraybuffer(env, info[0]) != napi_ok) throw Napi::Error::New(env, "napi_detach_arraybuffer failed");
  return env.Undefined();
}

}  // namespace

bool IsSection(HANDLE h, uint64_t* size) {
  static NtQuerySectionFn query = reinterpret_cast<NtQuerySectionFn>(
      reinterpret_cast<void*>(GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "NtQuerySection")));
  if (query == nullptr) return false;
  SectionBasic b{};
  SIZE_T got = 0;
  if (query(h, 0 /* SectionBasicInformation */, &b, sizeof b, &got) != 0) return false;
  *size = static_cast<uint64_t>(b.size.QuadPart);
  return true;
}

// A received section: whether it is one of ours (pagefile-backed, our header) and its length.
bool SectionLength(HANDLE h, uint64_t* length) {
  static NtQuerySectionFn query = reinterpret_cast<NtQuerySectionFn>(
      reinterpret_cast<void*>(GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "NtQuerySection")));
  SectionBasic b{};
  SIZE_T got = 0;
  if (query == nullptr || query(h, 0, &b, sizeof b, &got) != 0) return false;
  uint64_t total = static_cast<uint64_t>(b.size.QuadPart);
  if ((b.attributes & (kSecFile | kSecImage)) != 0 || total < kShmHead) return false;
  View v;
  if (!MapRange(h, FILE_MAP_READ, 0, kShmHead, &v)) return false;
  uint64_t len;
  memcpy(&len, v.at + 8, 8);
  if (memcmp(v.at, kShmMagic, 8) != 0 || len > total - kShmHead) return false;
  *length = len;
  return true;
}

void RegisterShm(Napi::Env env, Napi::Object exports, State* s) {
  exports.Set("sectionCreate", Napi::Function::New(env, SectionCreate, "sectionCreate", s));
  exports.Set("sectionReadOnly", Napi::Function::New(env, SectionReadOnly, "sectionReadOnly", s));
  exports.Set("sectionWrite", Napi::Function::New(env, SectionWrite, "sectionWrite", s));
  exports.Set("sectionRead", Napi::Function::New(env, SectionRead, "sectionRead", s));
  exports.Set("sectionWritable", Napi::Function::New(env, SectionWritable, "sectionWritable", s));
  exports.Set("detachBuffer", Napi::Function::New(env, DetachBuffer, "detachBuffer", s));
}

}  // namespace eicch
