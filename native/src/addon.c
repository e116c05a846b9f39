/* The pyisolate tensor addon: memfd, mmap/munmap and fd passing for the host. Each call checks every syscall
 * and throws an Error whose message names the call and the errno ("mmap failed: ENOMEM (...)"). */
#include "common.h"

#include <unistd.h>

typedef struct {
  const char *name;
  napi_callback fn;
} export_entry;

static const export_entry exports_table[] = {
  { "memfdCreate", pi_memfd_create },
  { "tmpfileCreate", pi_tmpfile_create },
  { "getSeals", pi_get_seals },
  { "addSeals", pi_add_seals },
  { "fstatSize", pi_fstat_size },
  { "closeFd", pi_close_fd },
  { "dupFd", pi_dup_fd },
  { "mmap", pi_mmap },
  { "munmap", pi_munmap },
  { "mapSealed", pi_map_sealed },
  { "copyOut", pi_copy_out },
  { "trimCopies", pi_trim_copies },
  { "socketPair", pi_socket_pair },
  { "sendFds", pi_send_fds },
  { "recvFds", pi_recv_fds },
};

static napi_value init(napi_env env, napi_value exports) {
  for (size_t i = 0; i < sizeof exports_table / sizeof exports_table[0]; i++) {
    napi_value fn = NULL;
    if (pi_failed(env, napi_create_function(env, exports_table[i].name, NAPI_AUTO_LENGTH, exports_table[i].fn, NULL, &fn)) ||
        pi_failed(env, napi_set_named_property(env, exports, exports_table[i].name, fn))) {
      return NULL;
    }
  }
  long page = sysconf(_SC_PAGESIZE);
  if (pi_failed(env, napi_set_named_property(env, exports, "pageSize", pi_number(env, page > 0 ? page : 4096)))) return NULL;
  if (pi_failed(env, napi_set_named_property(env, exports, "abiVersion", pi_number(env, 2)))) return NULL;
  return exports;
}

NAPI_MODULE_INIT() {
  return init(env, exports);
}
