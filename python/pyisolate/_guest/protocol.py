"""The wire protocol as data: constants and message kinds (see docs/protocol.md)."""

PROTOCOL_VERSION = 1
RUNTIME_VERSION = "0.1.0"
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024 * 1024
EXTENSION_TARGET = "extension"
CHANNEL_FD = 3

# Message kinds ("k" field).
HELLO = "hello"
INIT = "init"
READY = "ready"
FATAL = "fatal"
CALL = "call"
RESULT = "result"
ERROR = "error"
CANCEL = "cancel"
EVENT = "event"
RELEASE = "release"
SHUTDOWN = "shutdown"

# Exit status of a guest whose extension failed to load.
EXIT_LOAD_FAILED = 3
