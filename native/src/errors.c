/* Errors and argument checks shared by every call of the addon. */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const char *pi_errno_name(int err, char *scratch, size_t scratch_len) {
  /* A table, not strerrorname_np (glibc 2.32): the prebuilt binary must load on glibc 2.28, as Node 20 does. */
  switch (err) {
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOSYS: return "ENOSYS";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSPC: return "ENOSPC";
    case EPIPE: return "EPIPE";
    case ENOTSOCK: return "ENOTSOCK";
    case ENODEV: return "ENODEV";
    case EFBIG: return "EFBIG";
    case EOVERFLOW: return "EOVERFLOW";
    case ECONNRESET: return "ECONNRESET";
    case ETOOMANYREFS: return "ETOOMANYREFS";
    case EINTR: return "EINTR";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EFAULT: return "EFAULT";
    case EMSGSIZE: return "EMSGSIZE";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ESPIPE: return "ESPIPE";
    case ENXIO: return "ENXIO";
    case EROFS: return "EROFS";
    case EDQUOT: return "EDQUOT";
    case ETXTBSY: return "ETXTBSY";
    case ENOTCONN: return "ENOTCONN";
    case ECONNREFUSED: return "ECONNREFUSED";
    default: break;
  }
  snprintf(scratch, scratch_len, "E%d", err);
  return scratch;
}

static void set_prop(napi_env env, napi_value obj, const char *key, napi_value value) {
  if (value != NULL) napi_set_named_property(env, obj, key, value);
}

static napi_value make_string(napi_env env, const char *text) {
  napi_value out = NULL;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value throw_with(napi_env env, const char *code, const char *message, int err, const char *call) {
  napi_value error = NULL;
  napi_value msg = make_string(env, message);
  napi_value code_value = make_string(env, code);
  if (msg == NULL || napi_create_error(env, code_value, msg, &error) != napi_ok) {
    napi_throw_error(env, code, message);
    return NULL;
  }
  if (err != 0) set_prop(env, error, "errno", pi_number(env, err));
  if (call != NULL) set_prop(env, error, "syscall", make_string(env, call));
  napi_throw(env, error);
  return NULL;
}

napi_value pi_throw_errno(napi_env env, const char *call, int err) {
  char scratch[24];
  char message[256];
  const char *name = pi_errno_name(err, scratch, sizeof scratch);
  snprintf(message, sizeof message, "%s failed: %s (%s)", call, name, strerror(err));
  return throw_with(env, name, message, err, call);
}

napi_value pi_throw(napi_env env, const char *code, const char *message) {
  return throw_with(env, code, message, 0, NULL);
}

int pi_failed(napi_env env, napi_status status) {
  if (status == napi_ok) return 0;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    const char *what = (info != NULL && info->error_message != NULL) ? info->error_message : "N-API call failed";
    pi_throw(env, "ERR_PYISOLATE_NATIVE", what);
  }
  return 1;
}

napi_value pi_number(napi_env env, double value) {
  napi_value out = NULL;
  napi_create_double(env, value, &out);
  return out;
}

int pi_arg_is_undefined(napi_env env, napi_value value) {
  napi_valuetype type = napi_undefined;
  if (value == NULL) return 1;
  if (napi_typeof(env, value, &type) != napi_ok) return 1;
  return type == napi_undefined;
}

static int arg_number(napi_env env, napi_value value, const char *what, double *out) {
  char message[160];
  napi_valuetype type = napi_undefined;
  if (value != NULL && napi_typeof(env, value, &type) == napi_ok && type == napi_number &&
      napi_get_value_double(env, value, out) == napi_ok && isfinite(*out) && floor(*out) == *out &&
      *out >= 0 && *out <= PI_MAX_SAFE_INTEGER) {
    return 1;
  }
  snprintf(message, sizeof message, "%s must be a non-negative safe integer", what);
  pi_throw(env, "ERR_INVALID_ARG_VALUE", message);
  return 0;
}

int pi_arg_fd(napi_env env, napi_value value, const char *what, int *out) {
  double number = 0;
  if (!arg_number(env, value, what, &number)) return 0;
  if (number > 2147483647.0) {
    pi_throw(env, "ERR_INVALID_ARG_VALUE", "file descriptor out of range");
    return 0;
  }
  *out = (int)number;
  return 1;
}

int pi_arg_size(napi_env env, napi_value value, const char *what, uint64_t *out) {
  double number = 0;
  if (!arg_number(env, value, what, &number)) return 0;
  *out = (uint64_t)number;
  return 1;
}
