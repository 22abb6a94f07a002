{
  "targets": [
    {
      "target_name": "electron_ipc_channel",
      # Built on every POSIX system (Windows swaps them for src/native/win/, below). The Linux-only
      # files are added below; `npm run check:macos`
      # (scripts/check-macos.mjs) reads this file and compiles the OS=='mac' set with zig.
      "sources": [
        "src/native/addon.cc",
        "src/native/channel.cc",
        "src/native/shm.cc",
        "src/native/closer.cc",
        "src/native/sockets.cc",
        "src/native/stream.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags": ["-fvisibility=hidden"],
      "conditions": [
        ["OS=='linux'", {
          # The SOCK_SEQPACKET transport and the Landlock sandbox exist on Linux only.
          "sources": ["src/native/seqpacket.cc", "src/native/landlock.cc"],
          # Never unmapped by dlclose: Node closes an addon when the last worker that loaded it
          # ends, but the closer thread (src/native/closer.cc) and the Landlock signal handler
          # outlive it. (macOS: addon.cc marks the image RTLD_NODELETE at load instead.)
          "ldflags": ["-Wl,-z,nodelete"]
        }],
        ["OS=='win'", {
          # Windows (MSVC, node-gyp's default there): the win32 transport of src/native/win/
          # (message-mode named pipes, docs/windows.md) instead of the POSIX files. The same
          # sources are cross-compiled with mingw-w64 and tested under Wine by
          # `npm run test:windows`; this MSVC configuration itself is not built or tested here.
          "sources!": [
            "src/native/addon.cc",
            "src/native/channel.cc",
            "src/native/shm.cc",
            "src/native/closer.cc",
            "src/native/sockets.cc",
            "src/native/stream.cc"
          ],
          "sources": [
            "src/native/win/module.cc",
            "src/native/win/ends.cc",
            "src/native/win/io.cc",
            "src/native/win/watch.cc",
            "src/native/win/server.cc",
            "src/native/win/registry.cc",
            "src/native/win/crt.cc",
            "src/native/win/shm.cc",
            "src/native/win/lease.cc",
            "src/native/win/lockdown.cc"
          ],
          "defines": ["WIN32_LEAN_AND_MEAN", "NOMINMAX", "_CRT_SECURE_NO_WARNINGS"],
          "libraries": ["bcrypt.lib", "ntdll.lib", "advapi32.lib"],
          "msvs_settings": {
            "VCCLCompilerTool": {
              "ExceptionHandling": 1,
              "AdditionalOptions": ["/std:c++17", "/utf-8"]
            }
          }
        }],
        ["OS=='mac'", {
          # node-gyp builds a loadable_module: a Mach-O bundle (-bundle) linked with
          # `-undefined dynamic_lookup`, the Node-API symbols resolved from the host at load.
          "xcode_settings": {
            "MACOSX_DEPLOYMENT_TARGET": "11.0",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "CLANG_CXX_LIBRARY": "libc++",
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
            "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-fexceptions", "-fvisibility=hidden"],
            "WARNING_CFLAGS": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
          }
        }]
      ]
    }
  ]
}
