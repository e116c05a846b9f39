"""One extension process's life on the socket: hello, init, load, ready, serve, shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import platform

from . import inference
from . import protocol as P
from .context import set_peer
from .errors import error_to_wire
from .extension import FRAMEWORK_NAMES, public_methods, stream_methods
from .framing import ProtocolError
from .loader import class_spec, load_extension
from .peer import Peer
from .sock_transport import RECV_BYTES

log = logging.getLogger("pyisolate.guest")


async def serve(sock, max_frame_bytes: int = P.DEFAULT_MAX_FRAME_BYTES, open_streams=None, module_path=None) -> int:
    """Run the guest side of the connection on `sock` until shutdown or EOF; return the exit status.

    `open_streams`: an async callable giving (reader, writer) instead of `sock` (the TCP transport). `module_path`:
    where the extension is on this machine, over init's (a remote guest's node)."""
    loop = asyncio.get_running_loop()
    reader = writer = None
    if open_streams is not None:
        reader, writer = await open_streams()
        # asyncio's transport reads up to 256 KiB per recv() into a fresh bytes object: above glibc's mmap threshold,
        # so every small frame cost an mmap, an mremap and a munmap (strace). 64 KiB stays on the heap, as our Unix
        # socket transport's reads do. `max_size` is asyncio's own attribute; another event loop may not have it.
        if hasattr(writer.transport, "max_size"):
            writer.transport.max_size = RECV_BYTES
    init, shutdown = loop.create_future(), loop.create_future()
    inference_mode = None

    def on_message(msg: dict) -> None:
        kind = msg["k"]
        if kind == P.INIT and not init.done():
            init.set_result(msg)
        elif kind == P.SHUTDOWN:  # also valid before ready: the host gave up on the start
            if not shutdown.done():
                shutdown.set_result(None)
        else:
            raise ProtocolError(f"the host sent an unexpected {kind!r} message")

    peer = Peer(
        reader,
        writer,
        sock=sock if open_streams is None else None,
        on_message=on_message,
        max_frame_bytes=max_frame_bytes,
    )
    set_peer(peer)
    try:
        peer.send(
            {
                "k": P.HELLO,
                "v": P.PROTOCOL_VERSION,
                "runtime": P.RUNTIME_VERSION,
                "python": platform.python_version(),
                "pid": os.getpid(),
                "batch": True,  # this runtime reads batch frames
            }
        )
        reading = loop.create_task(peer.run())
        if not await _until(init, reading, shutdown):
            return _ended(reading)
        peer.enable_tensors(init.result().get("tensors"))
        peer.apply_limits(init.result().get("limits"))
        peer.enable_batches(init.result().get("batch"))
        peer.services = _services(init.result().get("services"))
        _idle_poll(loop, init.result().get("idlePollUs"))
        if init.result().get("inferenceMode") is True:
            inference_mode = inference.enter(loop)
        loading = loop.create_task(
            _load(init.result() if module_path is None else {**init.result(), "modulePath": module_path}, peer)
        )
        if not await _until(loading, reading, shutdown):
            loading.cancel()
            return _ended(reading)
        try:
            instance = loading.result()
        except (Exception, SystemExit) as e:  # a hook's sys.exit() too: the host must hear why, not see an exit
            await _send_fatal(peer, e)
            return P.EXIT_LOAD_FAILED
        # What the import made (numpy, torch, the extension) lives for the whole process: move it out of
        # the collector's generations, so that a full collection between two calls has less to walk.
        gc.freeze()
        methods = public_methods(instance)
        peer.send(
            {
                "k": P.READY,
                "methods": methods,
                "streams": stream_methods(instance, methods),
                "extensionClass": class_spec(type(instance)),
            }
        )
        if not await _until(shutdown, reading):
            return _ended(reading)
        await _stop(instance)
        await _flush(peer)  # results and events sent during stop() must reach the host
        return P.EXIT_OK
    finally:
        inference.leave(inference_mode)
        peer.close()
        set_peer(None)


def _idle_poll(loop, micros) -> None:
    """init's `idlePollUs` for the guest's loop (guest_loop.py); absent or out of range: the loop's default."""
    if hasattr(loop, "set_idle_poll") and type(micros) in (int, float):
        try:
            loop.set_idle_poll(micros * 1e-6)
        except ValueError:
            pass  # the host checks the option; an older or odd host keeps the default


def _services(names):
    """init's `services` as a set of names; None (every singleton remote) from a host that sends none."""
    if type(names) is not list:
        return None
    return frozenset(n for n in names if type(n) is str)


async def _load(init: dict, peer: Peer):
    version = init.get("v")
    if version != P.PROTOCOL_VERSION:
        raise ProtocolError(
            f"the host speaks protocol version {version!r}; this guest runtime "
            f"({P.RUNTIME_VERSION}) speaks version {P.PROTOCOL_VERSION}"
        )
    # Registered before the hooks run, as pyisolate does: a hook may register it again (`register_callee(self,
    # "extension")`), and calls the hooks make to the host can be answered by calls back to it.
    instance, _module, _cls = await load_extension(
        init.get("modulePath"),
        init.get("extensionClass"),
        on_instance=lambda ext: peer.register(P.EXTENSION_TARGET, ext, FRAMEWORK_NAMES),
    )
    return instance


async def _until(wanted, *enders) -> bool:
    """Wait for `wanted` unless one of `enders` (EOF, an early shutdown) comes first; True if done."""
    await asyncio.wait({wanted, *enders}, return_when=asyncio.FIRST_COMPLETED)
    return wanted.done()


def _ended(reading) -> int:
    # Shutdown before ready or EOF (the host went away) exit 0; a protocol violation exits non-zero.
    if not reading.done() or reading.cancelled() or reading.exception() is None:
        return P.EXIT_OK
    exc = reading.exception()
    if isinstance(exc, ProtocolError):
        log.error("pyisolate guest: protocol error, exiting: %s", exc)
        return P.EXIT_PROTOCOL_ERROR
    if isinstance(exc, (ConnectionError, OSError)):
        return P.EXIT_OK
    log.error("pyisolate guest: the connection failed", exc_info=exc)
    return P.EXIT_CONNECTION_FAILED


async def _send_fatal(peer: Peer, exc: BaseException) -> None:
    log.error("pyisolate guest: the extension failed to load", exc_info=exc)
    peer.send({"k": P.FATAL, "error": error_to_wire(exc)})
    await _flush(peer)  # the host must see why before we exit


async def _flush(peer: Peer) -> None:
    try:
        await asyncio.wait_for(peer.drain(), 5)
    except (OSError, asyncio.TimeoutError):
        pass


async def _stop(instance) -> None:
    try:
        result = instance.stop()
        if asyncio.iscoroutine(result) or hasattr(result, "__await__"):
            await result
    except Exception:
        log.exception("pyisolate guest: the extension's stop() hook failed")
