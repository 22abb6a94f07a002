// Pool segments (IpcSharedMemoryPool / IpcSharedBuffer, kind 'P') on Windows: a lease.
//
// On Linux a segment travels as one end of a socket pair whose receive queue holds the memfd:
// every holder peeks it (MSG_PEEK leaves it for the next holder), and when the last holder closes
// the end, the pool's end sees the hang-up and the segment is free again. A named pipe cannot
// peek a handle (handles travel beside the bytes, see io.cc), so here the segment's section is
// attached to the travelling pipe end itself:
// - the pool makes a pair, keeps one end (watched for the hang-up, as on Linux) and attaches a
//   read-only duplicate of the segment's section (SECTION_MAP_READ | SECTION_QUERY) to the other,
//   the lease (segmentAttach);
// - a lease end sent in a message takes its section along: the sender puts a duplicate of the
//   section right after the end's handle and marks it in the header's attachment bitmap (win.h);
//   the receiver attaches it to the end it just adopted (LeaseAttach), after checking it is a
//   pagefile-backed section with our header (SectionLength). A mark on a handle that does not
//   follow an adopted pipe end, or on anything but such a section, refuses the whole message
//   (PACKET_CTRUNCATED: MALFORMED), as io.cc refuses any handle it cannot take;
// - the typed layer reads the segment with segmentSection (its peekFd): a new section id for a
//   duplicate of the attached section, owned by the caller; the lease keeps its own;
// - nothing but the lease names the pool's pipe: when every process closed its handle of the
//   lease end (closed it, or died), the pool's end reads ERROR_BROKEN_PIPE and the pool takes the
//   segment back. A holder's section duplicates do not keep the segment out (they are not the
//   pipe) but only give reads: the pool's writable handle never leaves the pool's process.
// Ownership: End::lease belongs to its End (closed by LeaseClose from CloseEnd, duplicated by
// dup); a handle passed to LeaseAttach belongs to the end on success and is closed on refusal.
// Thread rules: JS thread only, like the rest of the table.
#include "win.h"

namespace eicch {

bool LeaseDup(End* e, HANDLE* out) {
  *out = nullptr;
  return DuplicateHandle(GetCurrentProcess(), e->lease, GetCurrentProcess(), out, 0, FALSE, DUPLICATE_SAME_ACCESS) != 0;
}

bool LeaseAttach(State* s, int32_t endId, HANDLE section) {
  auto it = endId >= kIdBase ? s->ends.find(endId) : s->ends.end();
  End* e = it == s->ends.end() ? nullptr : it->second;
  uint64_t length = 0;
  if (e == nullptr || e->section || e->listener || e->lease != nullptr || !SectionLength(section, &length)) {
    CloseHandle(section);
    return false;
  }
  e->lease = section;
  e->leaseSize = length;
  return true;
}

void LeaseClose(End* e) {
  if (e->lease != nullptr) CloseHandle(e->lease);
  e->lease = nullptr;
  e->leaseSize = 0;
}

namespace {

// segmentAttach(endId, sectionId): attaches a duplicate of the section (same access: the pool
// passes its read-only one) to a pipe end of a fresh pair, which becomes the segment's lease.
Napi::Value SegmentAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  End* e = GetEnd(s, env, info[0]);
  End* sec = GetEnd(s, env, info[1]);
  if (e->section || e->listener) throw Napi::TypeError::New(env, "segmentAttach: not a connected pipe end");
  if (!sec->section) throw Napi::TypeError::New(env, "segmentAttach: not a shared memory section");
  if (e->lease != nullptr) throw Napi::Error::New(env, "segmentAttach: this end carries a segment already");
  HANDLE d = nullptr;
  if (!DuplicateHandle(GetCurrentProcess(), sec->h, GetCurrentProcess(), &d, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
    ThrowWin(env, GetLastError(), "DuplicateHandle");
  }
  e->lease = d;
  e->leaseSize = sec->size;
  return env.Undefined();
}

// segmentSection(endId) -> the id of a new section for the segment a lease end carries (the
// caller owns it), or -1 when the end carries none (a plain pipe end sent as a segment).
Napi::Value SegmentSection(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* s = StateOf(info);
  End* e = GetEnd(s, env, info[0]);
  if (e->lease == nullptr) return Napi::Number::New(env, -1);
  HANDLE d = nullptr;
  if (!LeaseDup(e, &d)) ThrowWin(env, GetLastError(), "DuplicateHandle");
  End* r = NewEnd(s, d, false);
  r->section = true;
  r->size = e->leaseSize;
  return Napi::Number::New(env, r->id);
}

}  // namespace

void RegisterLease(Napi::Env env, Napi::Object exports, State* s) {
  exports.Set("segmentAttach", Napi::Function::New(env, SegmentAttach, "segmentAttach", s));
  exports.Set("segmentSection", Napi::Function::New(env, SegmentSection, "segmentSection", s));
}

}  // namespace eicch
