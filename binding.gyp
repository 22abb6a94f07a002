{
  "targets": [
    {
      "target_name": "electron_ipc_channel",
      "sources": [
        "src/native/addon.cc",
        "src/native/channel.cc",
        "src/native/shm.cc",
        "src/native/closer.cc",
        "src/native/landlock.cc",
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
      # Never unmapped by dlclose: Node closes an addon when the last worker that loaded it ends,
      # but the closer thread (src/native/closer.cc) and the Landlock signal handler outlive it.
      "ldflags": ["-Wl,-z,nodelete"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["src/native/channel.cc", "src/native/shm.cc", "src/native/closer.cc", "src/native/landlock.cc"] }]
      ]
    }
  ]
}
