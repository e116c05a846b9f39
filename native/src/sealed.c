/* A received memfd sealed against every change, mapped copy-on-write: a zero-copy Buffer the sender cannot alter. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The seals that make a file's first `size` bytes immutable: no write, no shrink (no SIGBUS), no grow. */
#define PI_SEALS_IMMUTABLE (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

/* mapSealed(fd, size, populate) -> ArrayBuffer over the first `size` bytes of `fd`, mapped MAP_PRIVATE and
 * read/write: JS may write to it, which copies the page privately and never reaches the file. Throws (EPERM) unless
 * the fd is a regular file of ordinary pages (not hugetlbfs: its ranges unmap only whole huge pages) sealed against
 * write, shrink and grow that holds `size` bytes. Seals are never removed, so what is checked here holds for as long
 * as the mapping lives. `populate` maps every page up front (read-only, so nothing is copied yet). */
napi_value pi_map_sealed(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd = -1;
  uint64_t size = 0;
  bool populate = false;
  napi_value result = NULL;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (!pi_arg_fd(env, argc > 0 ? argv[0] : NULL, "mapSealed: fd", &fd)) return NULL;
  if (!pi_arg_size(env, argc > 1 ? argv[1] : NULL, "mapSealed: size", &size)) return NULL;
  if (argc > 2 && napi_get_value_bool(env, argv[2], &populate) != napi_ok) {
    return pi_throw(env, "ERR_INVALID_ARG_TYPE", "mapSealed: populate must be a boolean");
  }
#ifdef F_GET_SEALS
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return pi_throw_errno(env, "mapSealed (fcntl F_GET_SEALS)", errno);
  if ((seals & PI_SEALS_IMMUTABLE) != PI_SEALS_IMMUTABLE) return pi_throw_errno(env, "mapSealed (seals)", EPERM);
#else
  return pi_throw_errno(env, "mapSealed", ENOSYS);
#endif
  /* statx, not fstat (a glibc 2.33 symbol): see fstatSize in shm.c. */
  struct statx st;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &st) != 0) return pi_throw_errno(env, "mapSealed (fstat)", errno);
  long page = sysconf(_SC_PAGESIZE);
  if (!S_ISREG(st.stx_mode) || (long)st.stx_blksize != page) return pi_throw_errno(env, "mapSealed (file kind)", EPERM);
  if (st.stx_size < size) return pi_throw_errno(env, "mapSealed (size)", EINVAL);
  if (size == 0) {
    void *unused = NULL;
    if (pi_failed(env, napi_create_arraybuffer(env, 0, &unused, &result))) return NULL;
    return result;
  }
  if (size > (uint64_t)SIZE_MAX) return pi_throw_errno(env, "mapSealed", EOVERFLOW);
  /* Populated read-only first: MAP_POPULATE on a writable private mapping would copy every page at once. */
  void *addr = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0);
  if (addr == MAP_FAILED) return pi_throw_errno(env, "mapSealed (mmap)", errno);
  if (mprotect(addr, (size_t)size, PROT_READ | PROT_WRITE) != 0) {
    int err = errno;
    munmap(addr, (size_t)size);
    return pi_throw_errno(env, "mapSealed (mprotect)", err);
  }
  return pi_wrap_mapping(env, addr, (size_t)size);
}
