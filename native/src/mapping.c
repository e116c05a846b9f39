/* Mappings as ArrayBuffers: mmap(MAP_SHARED) wrapped in an external ArrayBuffer whose finalizer unmaps, and an
 * explicit munmap that detaches the buffer first, so JS views become empty instead of pointing at freed memory. */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* External memory: this module reports none. V8 counts the length of every external ArrayBuffer by itself (its
 * ArrayBufferSweeper adds it when the buffer is made and drops it on detach or collection), so the size this
 * module used to add on top was counted twice and made V8 run a Mark-Compact on nearly every large segment.
 * Shared pages are not heap memory anyway: the kernel frees them with their last holder. V8's own count still
 * makes mappings dropped without release() collectable; see docs/decisions.md. */

/* One live or explicitly released mapping; freed by the ArrayBuffer's finalizer only. */
typedef struct mapping {
  void *addr;
  size_t len;
  int live; /* 1: the shared pages are mapped; 0: released by munmap(), a private placeholder remains */
  struct mapping *prev;
  struct mapping *next;
} mapping;

/* Every mapping of the process (all envs/workers), so munmap(buffer) can find the one behind a buffer. */
static mapping *mappings = NULL;
static pthread_mutex_t mappings_lock = PTHREAD_MUTEX_INITIALIZER;

static void unlink_mapping(mapping *m) {
  if (m->prev != NULL) m->prev->next = m->next;
  else mappings = m->next;
  if (m->next != NULL) m->next->prev = m->prev;
}

static void finalize_mapping(napi_env env, void *data, void *hint) {
  mapping *m = (mapping *)hint;
  pthread_mutex_lock(&mappings_lock);
  /* The range holds the shared pages (live) or munmap()'s placeholder: unmap either. A finalizer has no one to
   * report to, and munmap of a range this module mapped cannot fail. */
  munmap(m->addr, m->len);
  unlink_mapping(m);
  pthread_mutex_unlock(&mappings_lock);
  free(m);
}

/* mmap(fd, size, offset = 0) -> ArrayBuffer over the shared mapping (read/write). size 0 gives an empty buffer. */
napi_value pi_mmap(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd = -1;
  uint64_t size = 0;
  uint64_t offset = 0;
  napi_value result = NULL;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (!pi_arg_fd(env, argc > 0 ? argv[0] : NULL, "mmap: fd", &fd)) return NULL;
  if (!pi_arg_size(env, argc > 1 ? argv[1] : NULL, "mmap: size", &size)) return NULL;
  if (argc > 2 && !pi_arg_is_undefined(env, argv[2]) && !pi_arg_size(env, argv[2], "mmap: offset", &offset)) return NULL;
  long page = sysconf(_SC_PAGESIZE);
  if (page > 0 && offset % (uint64_t)page != 0) return pi_throw_errno(env, "mmap (offset not page-aligned)", EINVAL);
  if (size == 0) {
    void *unused = NULL;
    if (pi_failed(env, napi_create_arraybuffer(env, 0, &unused, &result))) return NULL;
    return result;
  }
  if (size > (uint64_t)SIZE_MAX) return pi_throw_errno(env, "mmap", EOVERFLOW);
  void *addr = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
  if (addr == MAP_FAILED) return pi_throw_errno(env, "mmap", errno);
  return pi_wrap_mapping(env, addr, (size_t)size);
}

/* Wraps a mapping this module's callers made in an external ArrayBuffer that owns it: the finalizer unmaps it, and
 * munmap(buffer) finds it. On failure the range is unmapped and NULL returned with an exception pending. */
napi_value pi_wrap_mapping(napi_env env, void *addr, size_t size) {
  napi_value result = NULL;
  mapping *m = (mapping *)calloc(1, sizeof *m);
  if (m == NULL) {
    munmap(addr, size);
    return pi_throw_errno(env, "mmap (bookkeeping)", ENOMEM);
  }
  m->addr = addr;
  m->len = size;
  m->live = 1;
  pthread_mutex_lock(&mappings_lock);
  m->next = mappings;
  if (mappings != NULL) mappings->prev = m;
  mappings = m;
  pthread_mutex_unlock(&mappings_lock);
  napi_status status = napi_create_external_arraybuffer(env, addr, size, finalize_mapping, m, &result);
  if (status != napi_ok) {
    pthread_mutex_lock(&mappings_lock);
    unlink_mapping(m);
    pthread_mutex_unlock(&mappings_lock);
    munmap(addr, size);
    free(m);
    if (status == napi_no_external_buffers_allowed) {
      return pi_throw(env, "ERR_PYISOLATE_NO_EXTERNAL_BUFFERS", "mmap: this runtime forbids external ArrayBuffers");
    }
    pi_failed(env, status);
    return NULL;
  }
  return result;
}

/* munmap(buffer) -> true when `buffer` was a live mapping made by mmap() above: the buffer is detached (every
 * view of it now has length 0) and the memory unmapped. false for any other or already released buffer. */
napi_value pi_munmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_buffer = false;
  void *data = NULL;
  size_t len = 0;
  napi_value result = NULL;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (argc < 1 || napi_is_arraybuffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer) {
    return pi_throw(env, "ERR_INVALID_ARG_TYPE", "munmap: argument must be an ArrayBuffer");
  }
  if (pi_failed(env, napi_get_arraybuffer_info(env, argv[0], &data, &len))) return NULL;
  mapping *found = NULL;
  pthread_mutex_lock(&mappings_lock);
  for (mapping *m = mappings; m != NULL && data != NULL; m = m->next) {
    if (m->live && m->addr == data && m->len == len) {
      found = m;
      break;
    }
  }
  pthread_mutex_unlock(&mappings_lock);
  if (found == NULL) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  /* Swap the shared pages for a private zero placeholder in one step (MAP_FIXED): the segment's memory is no
   * longer referenced here, and a view that somehow survives reads zeros instead of faulting. The placeholder
   * costs address space only until the finalizer unmaps it. `found` is not touched after the unlock. */
  pthread_mutex_lock(&mappings_lock);
  void *swapped = mmap(found->addr, found->len, PROT_READ | PROT_WRITE,
                       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (swapped == MAP_FAILED) {
    int err = errno;
    pthread_mutex_unlock(&mappings_lock);
    return pi_throw_errno(env, "munmap (mmap MAP_FIXED placeholder)", err);
  }
  found->live = 0;
  pthread_mutex_unlock(&mappings_lock);
  /* Then detach, so every view of the buffer has length 0. */
  if (pi_failed(env, napi_detach_arraybuffer(env, argv[0]))) return NULL;
  napi_get_boolean(env, true, &result);
  return result;
}
