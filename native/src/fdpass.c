/* File descriptors over Unix sockets (SCM_RIGHTS). Never blocks: MSG_DONTWAIT, and EAGAIN comes back as null. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The kernel's per-message limit (SCM_MAX_FD). */
#define MAX_FDS 253
#define MAX_RECV_BYTES (16 * 1024 * 1024)

#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

static int set_cloexec_nonblock(int fd, int nonblock) {
  int fdflags = fcntl(fd, F_GETFD);
  if (fdflags < 0 || fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) != 0) return -1;
  if (!nonblock) return 0;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -1;
  return 0;
}

/* socketPair(kind = "seqpacket" | "stream") -> [hostFd, childFd]: both close-on-exec (spawn's stdio dup2 clears it
 * in the child); hostFd is non-blocking, childFd blocking, as a child's plain socket expects. */
napi_value pi_socket_pair(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char kind[16] = "seqpacket";
  size_t kind_len = 0;
  int sv[2];
  napi_value result = NULL;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (argc > 0 && !pi_arg_is_undefined(env, argv[0]) &&
      napi_get_value_string_utf8(env, argv[0], kind, sizeof kind, &kind_len) != napi_ok) {
    return pi_throw(env, "ERR_INVALID_ARG_TYPE", "socketPair: kind must be \"seqpacket\" or \"stream\"");
  }
  int type;
  if (strcmp(kind, "seqpacket") == 0) type = SOCK_SEQPACKET;
  else if (strcmp(kind, "stream") == 0) type = SOCK_STREAM;
  else return pi_throw(env, "ERR_INVALID_ARG_VALUE", "socketPair: kind must be \"seqpacket\" or \"stream\"");
  if (socketpair(AF_UNIX, type, 0, sv) != 0) return pi_throw_errno(env, "socketpair", errno);
  if (set_cloexec_nonblock(sv[0], 1) != 0 || set_cloexec_nonblock(sv[1], 0) != 0) {
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    return pi_throw_errno(env, "fcntl", err);
  }
  if (pi_failed(env, napi_create_array_with_length(env, 2, &result)) ||
      pi_failed(env, napi_set_element(env, result, 0, pi_number(env, sv[0]))) ||
      pi_failed(env, napi_set_element(env, result, 1, pi_number(env, sv[1])))) {
    close(sv[0]);
    close(sv[1]);
    return NULL;
  }
  return result;
}

/* sendFds(socketFd, bytes: Uint8Array, fds: number[]) -> bytes sent, or null when the socket would block.
 * The fds ride on the first byte; on a stream socket the caller sends any unsent rest without fds. */
napi_value pi_send_fds(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int sock = -1;
  bool is_typed = false;
  napi_typedarray_type ta_type;
  size_t ta_len = 0;
  void *data = NULL;
  napi_value ab = NULL;
  size_t ta_offset = 0;
  uint32_t nfds = 0;
  bool is_array = false;
  int fds[MAX_FDS];
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (!pi_arg_fd(env, argc > 0 ? argv[0] : NULL, "sendFds: socketFd", &sock)) return NULL;
  if (argc < 2 || napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[1], &ta_type, &ta_len, &data, &ab, &ta_offset) != napi_ok ||
      ta_type != napi_uint8_array) {
    return pi_throw(env, "ERR_INVALID_ARG_TYPE", "sendFds: bytes must be a Uint8Array");
  }
  if (ta_len == 0) return pi_throw(env, "ERR_INVALID_ARG_VALUE", "sendFds: bytes must not be empty (fds ride on a byte)");
  if (argc < 3 || napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &nfds) != napi_ok) {
    return pi_throw(env, "ERR_INVALID_ARG_TYPE", "sendFds: fds must be an array of file descriptors");
  }
  if (nfds > MAX_FDS) return pi_throw(env, "ERR_INVALID_ARG_VALUE", "sendFds: at most 253 fds per message");
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value item = NULL;
    if (pi_failed(env, napi_get_element(env, argv[2], i, &item))) return NULL;
    if (!pi_arg_fd(env, item, "sendFds: fds[i]", &fds[i])) return NULL;
  }
  struct iovec iov = { .iov_base = data, .iov_len = ta_len };
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  char *control = NULL;
  if (nfds > 0) {
    size_t space = CMSG_SPACE(sizeof(int) * nfds);
    control = (char *)calloc(1, space);
    if (control == NULL) return pi_throw_errno(env, "sendmsg (control buffer)", ENOMEM);
    msg.msg_control = control;
    msg.msg_controllen = space;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  ssize_t sent;
  do {
    sent = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  int err = errno;
  free(control);
  if (sent < 0) {
    if (err == EAGAIN || err == EWOULDBLOCK) {
      napi_value null_value = NULL;
      napi_get_null(env, &null_value);
      return null_value;
    }
    return pi_throw_errno(env, "sendmsg", err);
  }
  return pi_number(env, (double)sent);
}

static void close_all(const int *fds, size_t count) {
  for (size_t i = 0; i < count; i++) close(fds[i]);
}

/* recvFds(socketFd, maxFds, maxBytes = 65536) -> { bytes: Buffer, fds: number[], truncated: boolean }, or null
 * when nothing is waiting. Received fds are close-on-exec. `truncated` says the kernel dropped fds beyond
 * maxFds (it closes them) or, on a seqpacket socket, bytes beyond maxBytes. bytes.length 0: the peer closed. */
napi_value pi_recv_fds(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int sock = -1;
  uint64_t max_fds = 0;
  uint64_t max_bytes = 65536;
  if (pi_failed(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return NULL;
  if (!pi_arg_fd(env, argc > 0 ? argv[0] : NULL, "recvFds: socketFd", &sock)) return NULL;
  if (!pi_arg_size(env, argc > 1 ? argv[1] : NULL, "recvFds: maxFds", &max_fds)) return NULL;
  if (argc > 2 && !pi_arg_is_undefined(env, argv[2]) && !pi_arg_size(env, argv[2], "recvFds: maxBytes", &max_bytes)) return NULL;
  if (max_fds > MAX_FDS) return pi_throw(env, "ERR_INVALID_ARG_VALUE", "recvFds: maxFds must be at most 253");
  if (max_bytes == 0 || max_bytes > MAX_RECV_BYTES) {
    return pi_throw(env, "ERR_INVALID_ARG_VALUE", "recvFds: maxBytes must be between 1 and 16 MiB");
  }
  size_t space = CMSG_SPACE(sizeof(int) * (max_fds > 0 ? max_fds : 1));
  char *control = (char *)calloc(1, space);
  char *bytes = (char *)malloc((size_t)max_bytes);
  if (control == NULL || bytes == NULL) {
    free(control);
    free(bytes);
    return pi_throw_errno(env, "recvmsg (buffers)", ENOMEM);
  }
  struct iovec iov = { .iov_base = bytes, .iov_len = (size_t)max_bytes };
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = max_fds > 0 ? space : 0;
  ssize_t got;
  do {
    got = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    int err = errno;
    free(control);
    free(bytes);
    if (err == EAGAIN || err == EWOULDBLOCK) {
      napi_value null_value = NULL;
      napi_get_null(env, &null_value);
      return null_value;
    }
    return pi_throw_errno(env, "recvmsg", err);
  }
  int fds[MAX_FDS];
  size_t nfds = 0;
  int extra = 0;
  for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
      if (nfds < max_fds) fds[nfds++] = fd;
      else {
        close(fd); /* the control buffer rounds up and may hold more than asked: keep the promise of maxFds */
        extra = 1;
      }
    }
  }
#if MSG_CMSG_CLOEXEC == 0
  for (size_t i = 0; i < nfds; i++) fcntl(fds[i], F_SETFD, FD_CLOEXEC);
#endif
  free(control);
  napi_value result = NULL, buffer = NULL, list = NULL, truncated = NULL;
  void *unused = NULL;
  napi_status status = napi_create_object(env, &result);
  if (status == napi_ok) status = napi_create_buffer_copy(env, (size_t)got, bytes, &unused, &buffer);
  free(bytes);
  if (status == napi_ok) status = napi_create_array_with_length(env, nfds, &list);
  for (size_t i = 0; status == napi_ok && i < nfds; i++) status = napi_set_element(env, list, (uint32_t)i, pi_number(env, fds[i]));
  if (status == napi_ok) status = napi_get_boolean(env, extra || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0, &truncated);
  if (status == napi_ok) status = napi_set_named_property(env, result, "bytes", buffer);
  if (status == napi_ok) status = napi_set_named_property(env, result, "fds", list);
  if (status == napi_ok) status = napi_set_named_property(env, result, "truncated", truncated);
  if (status != napi_ok) {
    close_all(fds, nfds); /* nobody will ever own them */
    pi_failed(env, status);
    return NULL;
  }
  return result;
}
