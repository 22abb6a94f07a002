// lockdown() on Windows: what a process can do to itself without a broker (Chromium's sandbox
// sets a restricted token, an integrity level or an AppContainer when it creates the process;
// none of those can be taken on afterwards, so files, the network and other processes stay
// reachable). Applied here, irreversibly:
// - a job object holding this process: at most one active process (no child processes can be
//   started), UI restrictions (other processes' USER handles, desktops, display settings, exit
//   windows, global atoms, clipboard, system parameters), and death on an unhandled exception
//   instead of the error dialog;
// - mitigation policies: no legacy extension points (AppInit DLLs, winevent hooks...), no images
//   from remote paths or with a low mandatory label.
// Each item is read back (IsProcessInJob, QueryInformationJobObject, GetProcessMitigationPolicy):
// the result says what was applied and what the system confirms, never more. Not dynamic-code or
// signed-image policies: V8's JIT and Node's own later DLL loads need them off.
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0A00
#endif
#include "win.h"

namespace eicch {

namespace {

Napi::Value WindowsLockdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  HANDLE job = CreateJobObjectW(nullptr, nullptr);
  bool limits = false, ui = false, inJob = false, limitsConfirmed = false;
  DWORD jobError = 0;
  if (job == nullptr) {
    jobError = GetLastError();
  } else {
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION li{};
    li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_ACTIVE_PROCESS | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
    li.BasicLimitInformation.ActiveProcessLimit = 1;
    limits = SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li) != 0;
    JOBOBJECT_BASIC_UI_RESTRICTIONS u{};
    u.UIRestrictionsClass = JOB_OBJECT_UILIMIT_DESKTOP | JOB_OBJECT_UILIMIT_DISPLAYSETTINGS | JOB_OBJECT_UILIMIT_EXITWINDOWS |
                            JOB_OBJECT_UILIMIT_GLOBALATOMS | JOB_OBJECT_UILIMIT_HANDLES | JOB_OBJECT_UILIMIT_READCLIPBOARD |
                            JOB_OBJECT_UILIMIT_WRITECLIPBOARD | JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS;
    ui = SetInformationJobObject(job, JobObjectBasicUIRestrictions, &u, sizeof u) != 0;
    if (!AssignProcessToJobObject(job, GetCurrentProcess())) jobError = GetLastError();
    BOOL in = FALSE;
    inJob = IsProcessInJob(GetCurrentProcess(), job, &in) && in;
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION back{};
    limitsConfirmed = QueryInformationJobObject(job, JobObjectExtendedLimitInformation, &back, sizeof back, nullptr) &&
                      (back.BasicLimitInformation.LimitFlags & JOB_OBJECT_LIMIT_ACTIVE_PROCESS) &&
                      back.BasicLimitInformation.ActiveProcessLimit == 1;
    // The job handle stays open for the life of the process (closing it would change nothing).
  }
  r.Set("job", inJob);
  r.Set("jobLimitsSet", limits);
  r.Set("jobLimits", limits && limitsConfirmed);
  r.Set("jobUi", ui);
  if (jobError != 0) r.Set("jobError", ErrorCode(jobError));

  PROCESS_MITIGATION_EXTENSION_POINT_DISABLE_POLICY ep{};
  ep.DisableExtensionPoints = 1;
  bool epSet = SetProcessMitigationPolicy(ProcessExtensionPointDisablePolicy, &ep, sizeof ep) != 0;
  PROCESS_MITIGATION_EXTENSION_POINT_DISABLE_POLICY epBack{};
  bool epOk = epSet && GetProcessMitigationPolicy(GetCurrentProcess(), ProcessExtensionPointDisablePolicy, &epBack, sizeof epBack) &&
              epBack.DisableExtensionPoints;
  PROCESS_MITIGATION_IMAGE_LOAD_POLICY il{};
  il.NoRemoteImages = 1;
  il.NoLowMandatoryLabelImages = 1;
  bool ilSet = SetProcessMitigationPolicy(ProcessImageLoadPolicy, &il, sizeof il) != 0;
  PROCESS_MITIGATION_IMAGE_LOAD_POLICY ilBack{};
  bool ilOk = ilSet && GetProcessMitigationPolicy(GetCurrentProcess(), ProcessImageLoadPolicy, &ilBack, sizeof ilBack) &&
              ilBack.NoRemoteImages && ilBack.NoLowMandatoryLabelImages;
  r.Set("extensionPointsSet", epSet);
  r.Set("extensionPoints", epOk);
  r.Set("imageLoadSet", ilSet);
  r.Set("imageLoad", ilOk);
  return r;
}

}  // namespace

void RegisterLockdown(Napi::Env env, Napi::Object exports) {
  exports.Set("windowsLockdown", Napi::Function::New(env, WindowsLockdown, "windowsLockdown"));
}

}  // namespace eicch
