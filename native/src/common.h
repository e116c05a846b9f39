/* Shared helpers of the addon: argument parsing and errors that name the call and the errno. */
#ifndef PYISOLATE_COMMON_H
#define PYISOLATE_COMMON_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* Largest integer a JS number holds exactly: sizes and offsets above it are refused. */
#define PI_MAX_SAFE_INTEGER 9007199254740991.0

/* Throws Error("<call> failed: <ENAME> (<strerror>)") with .code = ENAME, .errno, .syscall. Returns NULL. */
napi_value pi_throw_errno(napi_env env, const char *call, int err);
/* Throws a TypeError/RangeError-like Error with .code = code. Returns NULL. */
napi_value pi_throw(napi_env env, const char *code, const char *message);
/* Throws the pending N-API failure as an Error when `status` is not napi_ok; returns 1 on failure. */
int pi_failed(napi_env env, napi_status status);
/* The errno's symbolic name ("ENOMEM"); "E<number>" when unknown. */
const char *pi_errno_name(int err, char *scratch, size_t scratch_len);

/* Argument readers: each throws and returns 0 when the value is missing or of the wrong kind. */
int pi_arg_fd(napi_env env, napi_value value, const char *what, int *out);
int pi_arg_size(napi_env env, napi_value value, const char *what, uint64_t *out);
int pi_arg_is_undefined(napi_env env, napi_value value);

napi_value pi_number(napi_env env, double value);

/* Function tables of each part, registered by addon.c. */
napi_value pi_memfd_create(napi_env env, napi_callback_info info);
napi_value pi_tmpfile_create(napi_env env, napi_callback_info info);
napi_value pi_get_seals(napi_env env, napi_callback_info info);
napi_value pi_add_seals(napi_env env, napi_callback_info info);
napi_value pi_fstat_size(napi_env env, napi_callback_info info);
napi_value pi_close_fd(napi_env env, napi_callback_info info);
napi_value pi_dup_fd(napi_env env, napi_callback_info info);
napi_value pi_mmap(napi_env env, napi_callback_info info);
napi_value pi_munmap(napi_env env, napi_callback_info info);
napi_value pi_map_sealed(napi_env env, napi_callback_info info);
napi_value pi_copy_out(napi_env env, napi_callback_info info);
napi_value pi_trim_copies(napi_env env, napi_callback_info info);
/* mapping.c: an external ArrayBuffer that owns [addr, addr + size) (unmapped by its finalizer or munmap()). */
napi_value pi_wrap_mapping(napi_env env, void *addr, size_t size);
napi_value pi_socket_pair(napi_env env, napi_callback_info info);
napi_value pi_send_fds(napi_env env, napi_callback_info info);
napi_value pi_recv_fds(napi_env env, napi_callback_info info);

#endif
