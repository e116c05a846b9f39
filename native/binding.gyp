# node-gyp build of the tensor addon: memfd, mmap and fd passing for the host (plain node_api.h, no dependency).
{
  "targets": [
    {
      "target_name": "pyisolate_native",
      "sources": ["src/addon.c", "src/errors.c", "src/shm.c", "src/mapping.c", "src/sealed.c", "src/copyout.c", "src/fdpass.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "conditions": [
        ["OS=='mac'", { "xcode_settings": { "OTHER_CFLAGS": ["-std=gnu11", "-Wall"] } }]
      ]
    }
  ]
}
