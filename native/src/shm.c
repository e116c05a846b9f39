/* Shared-memory files: memfd (sealed to its size), an unlinked file in a private folder, seals, size, close. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

#define MEMFD_NAME_MAX 249

/* Gives the file its size; on failure closes it and throws. Returns 1 on success. */
static int size_file(napi_env env, int fd, uint64_t size, int reserve) {
  if (size > (uint64_t)INT64_MAX) {
    close(fd);
    pi_throw_errno(env, "ftruncate", EFBIG);
    return 0;
  }
  if (ftruncate(fd, (off_t)size) != 0) {
    int err = errno;
    close(fd);
    pi_throw_errno(env, "ftruncate", err);
    return 0;
  }
#ifdef __linux__
  /* A sparse file on a full tmpfs turns a later write into SIGBUS: reserve the blocks now (ENOSPC here instead). */
  if (reserve && size > 0 && fallocate(fd, 0, 0, (off_t)size) != 0) {
    int err = errno;
    if (err != EOPNOTSUPP && err != ENOSYS) {
      close(fd);
      pi_throw_errno(env, "fallocate", err);
      return 0;
    }
  }
#endif
  return 1;
}

/* memfdCreate(name: string, size: number, sealLater = false) -> fd. MFD_CLOEXEC | MFD_ALLOW_SEALING, then sized and
 * sealed against shrinking and growing, so a peer holding the fd cannot make the host's mapping fault (SIGBUS), and
 * against further seals unless `sealLater` (the caller then adds F_SEAL_WRITE with addSeals once it has written). */
napi_value pi_memfd_create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char name[MEMFD_NAME_MAX + 1];
  bool seal_later = false;
  size_t name_len = 0;
  uint64_t size = 0;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok) {
    return pi_throw(env, "ERR_INVALID_ARG_TYPE", "memfdCreate: name must be a string");
  }
  if (!pi_arg_size(env, argc > 1 ? argv[1] : NULL, "memfdCreate: size", &size)) return NULL;
  if (argc > 2 && !pi_arg_is_undefined(env, argv[2]) && napi_get_value_bool(env, argv[2], &seal_later) != napi_ok) {
    return pi_throw(env, "ERR_INVALID_ARG_TYPE", "memfdCreate: sealLater must be a boolean");
  }
#if defined(__linux__) && defined(SYS_memfd_create)
  int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
  if (fd < 0 && errno == EINVAL) {
    /* Kernels before 6.3 do not know MFD_NOEXEC_SEAL. */
    fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  }
  if (fd < 0) return pi_throw_errno(env, "memfd_create", errno);
  if (!size_file(env, fd, size, 0)) return NULL;
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | (seal_later ? 0 : F_SEAL_SEAL)) != 0) {
    int err = errno;
    close(fd);
    return pi_throw_errno(env, "fcntl(F_ADD_SEALS)", err);
  }
  return pi_number(env, fd);
#else
  return pi_throw_errno(env, "memfd_create", ENOSYS);
#endif
}

/* tmpfileCreate(dir: string, size: number) -> fd: a file that never has (or at once loses) its name in `dir`,
 * which the caller made private (mode 0700). The fallback where memfd is missing; it cannot be sealed. */
napi_value pi_tmpfile_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[PATH_MAX];
  size_t dir_len = 0;
  uint64_t size = 0;
  int fd = -1;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path - 32, &dir_len) != napi_ok ||
      dir_len == 0 || dir_len >= sizeof path - 33) {
    return pi_throw(env, "ERR_INVALID_ARG_TYPE", "tmpfileCreate: dir must be a non-empty path string");
  }
  if (!pi_arg_size(env, argc > 1 ? argv[1] : NULL, "tmpfileCreate: size", &size)) return NULL;
#ifdef O_TMPFILE
  fd = open(path, O_TMPFILE | O_RDWR | O_CLOEXEC | O_EXCL, 0600);
  if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return pi_throw_errno(env, "open(O_TMPFILE)", errno);
  }
#endif
  if (fd < 0) {
    strcat(path, "/pyisolate-XXXXXX");
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) return pi_throw_errno(env, "mkostemp", errno);
    if (unlink(path) != 0) {
      int err = errno;
      close(fd);
      return pi_throw_errno(env, "unlink", err);
    }
  }
  if (!size_file(env, fd, size, 1)) return NULL;
  return pi_number(env, fd);
}

/* Reads the one fd argument of the functions below; throws and returns 0 when it is missing or not an fd. */
static int only_fd_arg(napi_env env, napi_callback_info info, const char *what, int *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return 0;
  return pi_arg_fd(env, argc > 0 ? argv[0] : NULL, what, fd);
}

/* getSeals(fd) -> number (F_SEAL_* bits) or null when the file does not support seals. */
napi_value pi_get_seals(napi_env env, napi_callback_info info) {
  int fd = -1;
  napi_value result = NULL;
  if (!only_fd_arg(env, info, "getSeals: fd", &fd)) return NULL;
#ifdef F_GET_SEALS
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals >= 0) return pi_number(env, seals);
  if (errno != EINVAL) return pi_throw_errno(env, "fcntl(F_GET_SEALS)", errno);
#endif
  napi_get_null(env, &result);
  return result;
}

/* fstatSize(fd) -> size in bytes; throws EINVAL when fd is not a regular file (a socket, a pipe, a device). */
napi_value pi_fstat_size(napi_env env, napi_callback_info info) {
  int fd = -1;
  struct statx st;
  if (!only_fd_arg(env, info, "fstatSize: fd", &fd)) return NULL;
  /* statx (glibc 2.28), not fstat (a new symbol in glibc 2.33): the prebuilt binary loads where Node 20 runs. */
  if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &st) != 0) return pi_throw_errno(env, "fstat", errno);
  if (!S_ISREG(st.stx_mode)) return pi_throw_errno(env, "fstat (not a regular file)", EINVAL);
  return pi_number(env, (double)st.stx_size);
}

/* addSeals(fd, seals): fcntl(F_ADD_SEALS); throws (EPERM) where the file forbids them (F_SEAL_SEAL, a writable
 * shared mapping for F_SEAL_WRITE) and EINVAL where it cannot carry seals. */
napi_value pi_add_seals(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd = -1;
  uint64_t seals = 0;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (!pi_arg_fd(env, argc > 0 ? argv[0] : NULL, "addSeals: fd", &fd)) return NULL;
  if (!pi_arg_size(env, argc > 1 ? argv[1] : NULL, "addSeals: seals", &seals)) return NULL;
#ifdef F_ADD_SEALS
  if (seals > 0xffff) return pi_throw_errno(env, "fcntl(F_ADD_SEALS)", EINVAL);
  if (fcntl(fd, F_ADD_SEALS, (int)seals) != 0) return pi_throw_errno(env, "fcntl(F_ADD_SEALS)", errno);
  return NULL;
#else
  return pi_throw_errno(env, "fcntl(F_ADD_SEALS)", ENOSYS);
#endif
}

/* closeFd(fd): EINTR counts as closed (Linux always releases the descriptor). */
napi_value pi_close_fd(napi_env env, napi_callback_info info) {
  int fd = -1;
  if (!only_fd_arg(env, info, "closeFd: fd", &fd)) return NULL;
  if (close(fd) != 0 && errno != EINTR) return pi_throw_errno(env, "close", errno);
  return NULL;
}

/* dupFd(fd) -> a new close-on-exec descriptor of the same open file (F_DUPFD_CLOEXEC). */
napi_value pi_dup_fd(napi_env env, napi_callback_info info) {
  int fd = -1;
  if (!only_fd_arg(env, info, "dupFd: fd", &fd)) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return pi_throw_errno(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
  return pi_number(env, copy);
}
