{
  "targets": [
    {
      "target_name": "socketeer_native",
      "sources": [
        "native/accept.c",
        "native/addon.c",
        "native/accounts.c",
        "native/arena.c",
        "native/cgroup.c",
        "native/child.c",
        "native/exit-watch.c",
        "native/fds.c",
        "native/launch.c",
        "native/names.c",
        "native/orphans.c",
        "native/peer.c",
        "native/spawn.c",
        "native/spawn-options.c",
        "native/unix-bind.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "ldflags": ["-Wl,-z,nodelete", "-Wl,-z,now"]
    }
  ]
}
