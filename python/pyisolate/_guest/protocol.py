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
ITEM = "item"  # one item of a stream call, from its callee
CREDIT = "credit"  # the stream call's caller lets the callee send `n` more items
BATCH = "batch"  # several plain call, result and error messages in one frame
BATCHED_KINDS = frozenset((CALL, RESULT, ERROR))  # what a batch may hold
CALLS = "calls"  # plain calls of one target and method: ids and args side by side
RESULTS = "results"  # plain results: ids and values side by side
MAX_BATCH = 4096  # messages per batch, calls or results frame

DEFAULT_STREAM_WINDOW = 16
MAX_STREAM_WINDOW = 65536  # the most credit one stream may hold outstanding

# The guest's exit status: one code per cause (docs/protocol.md, Exit status). bootstrap.py runs before this module
# can be imported and repeats 2, 4 and 5 by value; test_exit_codes.py holds them equal.
EXIT_OK = 0  # shutdown, or the host went away (EOF)
EXIT_PARENT_GONE = 1  # the host died before the guest could ask to die with it
EXIT_NO_CHANNEL = 2  # fd 3 is not a socket: not started by the host
EXIT_LOAD_FAILED = 3  # the extension failed to load (a `fatal` message said why)
EXIT_NOT_CONFINED = 4  # the sandbox, supervisor or rlimits the host asked for could not be applied
EXIT_NO_VENV = 5  # the venv the host named could not be activated
EXIT_PROTOCOL_ERROR = 6  # the host broke the protocol (a malformed frame, or one over a limit)
EXIT_CONNECTION_FAILED = 7  # reading the connection failed in a way that is not a protocol error (a runtime bug)
EXIT_NO_HOST = 8  # TCP transport: the host could not be reached, or its certificate is not the pinned one
