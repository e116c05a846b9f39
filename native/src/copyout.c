/* A copy of a received file's first bytes in fresh memory advised into huge pages: the host's read of bytes an
 * extension lends from its pool (the extension writes that file again later, so the host cannot map it). */
#include "common.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PI_HUGE_PAGE ((size_t)2 * 1024 * 1024)
/* Freed copies kept for the next ones: fresh memory costs its zeroing and page faults, as much as the copy itself
 * (bench/README.md, "Bytes"). At most this many, this much in all, each for at most PI_CACHE_IDLE_NS. */
#define PI_CACHE_SLOTS 64
#define PI_CACHE_MAX_BYTES ((size_t)256 * 1024 * 1024)
#define PI_CACHE_IDLE_NS ((int64_t)1000 * 1000 * 1000)

typedef struct {
  char *addr;
  size_t capacity; /* see capacity_for */
  int64_t freed_at;
} cached_region;

/* The buffers' finalizers may run on a V8 background thread: the cache has a lock of its own. */
static cached_region cache[PI_CACHE_SLOTS];
static size_t cache_bytes = 0;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Unmaps the cached regions freed more than `max_age_ns` ago; call with the lock held. */
static void evict_older_than(int64_t max_age_ns) {
  int64_t now = now_ns();
  for (int i = 0; i < PI_CACHE_SLOTS; i++) {
    if (cache[i].addr != NULL && now - cache[i].freed_at >= max_age_ns) {
      munmap(cache[i].addr, cache[i].capacity);
      cache_bytes -= cache[i].capacity;
      cache[i].addr = NULL;
    }
  }
}

/* The smallest cached region of at least `capacity` bytes and at most twice that, taken out of the cache. */
static char *take_cached(size_t capacity) {
  char *found = NULL;
  pthread_mutex_lock(&cache_lock);
  int best = -1;
  for (int i = 0; i < PI_CACHE_SLOTS; i++) {
    size_t c = cache[i].capacity;
    if (cache[i].addr != NULL && c >= capacity && c / 2 <= capacity && (best < 0 || c < cache[best].capacity)) best = i;
  }
  if (best >= 0) {
    found = cache[best].addr;
    cache_bytes -= cache[best].capacity;
    cache[best].addr = NULL;
  }
  pthread_mutex_unlock(&cache_lock);
  return found;
}

typedef struct {
  size_t capacity;
} copy_hint;

/* A copy's buffer was collected: its memory goes to the cache while there is room, else back to the system. */
static void finalize_copy(napi_env env, void *data, void *hint) {
  copy_hint *h = (copy_hint *)hint;
  size_t capacity = h->capacity;
  free(h);
  pthread_mutex_lock(&cache_lock);
  evict_older_than(PI_CACHE_IDLE_NS);
  int slot = -1;
  for (int i = 0; i < PI_CACHE_SLOTS && slot < 0; i++) {
    if (cache[i].addr == NULL) slot = i;
  }
  if (slot >= 0 && cache_bytes + capacity <= PI_CACHE_MAX_BYTES) {
    cache[slot].addr = (char *)data;
    cache[slot].capacity = capacity;
    cache[slot].freed_at = now_ns();
    cache_bytes += capacity;
    data = NULL;
  }
  pthread_mutex_unlock(&cache_lock);
  if (data != NULL) munmap(data, capacity);
}

/* The size of memory kept for a copy of `size` bytes: whole huge pages from one on, else whole 64 KiB (so that
 * a kept region fits the many sizes near it). */
static size_t capacity_for(size_t size) {
  size_t unit = size >= PI_HUGE_PAGE ? PI_HUGE_PAGE : (size_t)64 * 1024;
  return (size + unit - 1) & ~(unit - 1);
}

/* Fresh anonymous memory of `capacity` bytes. From one huge page on it starts on a 2 MiB boundary (the aligned part
 * of a larger mapping; the rest is unmapped) and is advised into huge pages: a 50 MB copy then takes 25 page faults
 * instead of 12,800. NULL and errno set on failure. Where THP is off, madvise fails: 4 KiB pages then. */
static char *fresh_memory(size_t capacity) {
  if (capacity < PI_HUGE_PAGE) {
    char *memory = mmap(NULL, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return memory == MAP_FAILED ? NULL : memory;
  }
  size_t span = capacity + PI_HUGE_PAGE;
  char *base = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return NULL;
  char *start = (char *)(((uintptr_t)base + PI_HUGE_PAGE - 1) & ~(uintptr_t)(PI_HUGE_PAGE - 1));
  if (start > base) munmap(base, (size_t)(start - base));
  if (base + span > start + capacity) munmap(start + capacity, (size_t)(base + span - (start + capacity)));
#ifdef MADV_HUGEPAGE
  madvise(start, capacity, MADV_HUGEPAGE);
#endif
  return start;
}

/* copyOut(fd, size) -> ArrayBuffer holding a copy of the first `size` bytes of `fd` (read with pread, so a file
 * the sender still writes to yields its bytes of the moment and never a fault). Throws with errno ENODATA when
 * the file ends first. The buffer owns its memory: its finalizer keeps it for the next copy (or unmaps it). */
napi_value pi_copy_out(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int fd = -1;
  uint64_t size = 0;
  napi_value result = NULL;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (!pi_arg_fd(env, argc > 0 ? argv[0] : NULL, "copyOut: fd", &fd)) return NULL;
  if (!pi_arg_size(env, argc > 1 ? argv[1] : NULL, "copyOut: size", &size)) return NULL;
  if (size == 0) {
    void *unused = NULL;
    if (pi_failed(env, napi_create_arraybuffer(env, 0, &unused, &result))) return NULL;
    return result;
  }
  if (size > (uint64_t)SIZE_MAX - 2 * PI_HUGE_PAGE) return pi_throw_errno(env, "copyOut", EOVERFLOW);
  size_t capacity = capacity_for((size_t)size);
  char *memory = take_cached(capacity);
  if (memory == NULL) memory = fresh_memory(capacity);
  if (memory == NULL) return pi_throw_errno(env, "copyOut (mmap)", errno);
  size_t done = 0;
  while (done < (size_t)size) {
    ssize_t n = pread(fd, memory + done, (size_t)size - done, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : ENODATA;
      munmap(memory, capacity);
      return pi_throw_errno(env, "copyOut (pread)", err);
    }
    done += (size_t)n;
  }
  copy_hint *hint = (copy_hint *)malloc(sizeof *hint);
  if (hint == NULL) {
    munmap(memory, capacity);
    return pi_throw_errno(env, "copyOut (bookkeeping)", ENOMEM);
  }
  hint->capacity = capacity;
  napi_status status = napi_create_external_arraybuffer(env, memory, (size_t)size, finalize_copy, hint, &result);
  if (status != napi_ok) {
    munmap(memory, capacity);
    free(hint);
    if (status == napi_no_external_buffers_allowed) {
      return pi_throw(env, "ERR_PYISOLATE_NO_EXTERNAL_BUFFERS", "copyOut: this runtime forbids external ArrayBuffers");
    }
    pi_failed(env, status);
    return NULL;
  }
  return result;
}

/* trimCopies(maxAgeMs) -> bytes still cached: unmaps the memory of copies collected at least `maxAgeMs` ago (0:
 * all of it). The host calls it when copies stop coming, so an idle process holds none. */
napi_value pi_trim_copies(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint64_t max_age_ms = 0;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (argc > 0 && !pi_arg_size(env, argv[0], "trimCopies: maxAgeMs", &max_age_ms)) return NULL;
  pthread_mutex_lock(&cache_lock);
  evict_older_than((int64_t)max_age_ms * 1000000);
  size_t left = cache_bytes;
  pthread_mutex_unlock(&cache_lock);
  return pi_number(env, (double)left);
}
