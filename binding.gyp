{
  "targets": [
    {
      "target_name": "socketeer_native",
      "sources": [
        "native/accept.c",
        "native/accounts.c",
        "native/addon-state.c",
        "native/addon.c",
        "native/address.c",
        "native/arena.c",
        "native/cgroup.c",
        "native/child.c",
        "native/exit-watch.c",
        "native/fds.c",
        "native/launch.c",
        "native/names.c",
        "native/notify.c",
        "native/orphans.c",
        "native/peer.c",
        "native/proxy-header.c",
        "native/readable.c",
        "native/spawn-options.c",
        "native/spawn.c",
        "native/splice.c",
        "native/splice-conn.c",
        "native/stderr-pipes.c",
        "native/unix-bind.c",
        "native/unix-failure.c",
        "native/unix-private.c",
        "native/unix-walk.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "ldflags": ["-Wl,-z,nodelete", "-Wl,-z,now"]
    }
  ]
}
