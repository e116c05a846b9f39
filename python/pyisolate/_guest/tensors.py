"""numpy arrays and torch tensors as `$tensor` descriptors: shared segments by fd, or bytes in the frame.

numpy and torch are imported lazily, only when a value is one of theirs (or a descriptor asks for one).
"""

from __future__ import annotations

import sys
import warnings

from . import segments, tensors_torch  # tensors_torch imports torch only when a torch tensor comes or goes
from .framing import naturals
from .segments import Segment
from .tensor_layout import (
    DTYPES,
    bytes_descriptor,
    contiguous_strides,
    element_strides,
    segment_descriptor,
    span_bytes,
)

NOT_A_TENSOR = object()
_ITEM_SIZES = {
    "bool": 1,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "float16": 2,
    "bfloat16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
}


def encode(value, enc, shm: bool):
    """The `$tensor` tag for a numpy array or torch tensor, or NOT_A_TENSOR for anything else."""
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            return enc.tag("$tensor", _from_numpy(np, value, enc, shm))  # already in wire order
        if isinstance(value, np.generic):  # a numpy scalar travels as the plain number it holds
            return enc.encode(value.item())
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return enc.tag("$tensor", tensors_torch.encode(torch, value, enc, shm))  # in wire order too
    return NOT_A_TENSOR


_NUMPY_NAMES = {}  # dtype -> wire name: numpy works `dtype.name` out in Python on each access


def _numpy_name(np, dtype) -> str:
    name = _NUMPY_NAMES.get(dtype)
    if name is not None:
        return name
    name = dtype.name
    if name == "bool" or (name in DTYPES and dtype.kind in "iufcbV"):
        _NUMPY_NAMES[dtype] = name
        return name
    raise TypeError(
        f"cannot send a numpy array of dtype {dtype} to the host: only bool, integer, float "
        f"and complex dtypes travel as tensors"
    )


def _from_numpy(np, arr, enc, shm: bool) -> dict:
    """The descriptor of a numpy array, its keys in wire order (built in that order: no reordering per call)."""
    desc = _placed_numpy(np, arr, enc, shm)
    desc["framework"] = "numpy"
    return desc


def _placed_numpy(np, arr, enc, shm: bool) -> dict:
    """The descriptor's layout and storage: a segment's view or a copy into one, else bytes."""
    dtype = arr.dtype
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
        dtype = arr.dtype
    name = _numpy_name(np, dtype)
    item = dtype.itemsize
    shape = list(arr.shape)
    if arr.size == 0 or not shm:
        return _bytes_numpy(np, arr, name, shape, enc)
    strides = element_strides(arr.strides, item)
    seg = None
    if strides is not None:
        address = arr.__array_interface__["data"][0]
        seg = segments.containing(address, span_bytes(shape, strides, item))
    if seg is None:  # an ordinary array: one copy into a fresh segment
        try:
            seg = segments.allocate(arr.nbytes)
        except OSError:
            return _bytes_numpy(np, arr, name, shape, enc)
        np.copyto(np.ndarray(arr.shape, dtype, buffer=seg), arr, casting="no")
        strides, address = contiguous_strides(shape), seg.address
    return segment_descriptor(name, shape, strides, address - seg.address, seg, enc)


def _bytes_numpy(np, arr, name: str, shape: list, enc) -> dict:
    buf = bytearray(arr.nbytes)
    if arr.nbytes:
        np.copyto(np.ndarray(arr.shape, arr.dtype, buffer=buf), arr, casting="no")
    return bytes_descriptor(name, shape, buf, enc)


class ReceivedFrame:
    """The fds and attachments of one frame; each fd becomes a segment once, on first use."""

    def __init__(self, fds: list, attachments) -> None:
        self._fds = fds  # owned; entries become None once taken
        self._attachments = attachments
        self._segments = {}

    def segment(self, index, size) -> Segment:
        seg = self._segments.get(index)
        if seg is not None:
            return seg
        if type(index) is not int or not 0 <= index < len(self._fds) or self._fds[index] is None:
            raise ValueError(f"$tensor names fd {index!r}, which the frame did not bring")
        fd, self._fds[index] = self._fds[index], None
        seg = self._segments[index] = segments.adopt(fd, size)
        segments.keep(seg)
        return seg

    @staticmethod
    def named(ino, size) -> Segment:
        """A segment the host names by id alone: one kept for it; ValueError for any other id."""
        seg = segments.kept(ino) if type(ino) is int else None
        if seg is None:
            raise ValueError(f"$tensor names segment {ino!r} without an fd, and none such is kept here")
        if size > seg.size:
            raise ValueError(f"$tensor declares {size} bytes of segment {ino}, which holds {seg.size}")
        return seg

    def attachment(self, index):
        if type(index) is not int or not 0 <= index < len(self._attachments):
            raise ValueError(f"$tensor names attachment {index!r}, which the frame did not bring")
        return self._attachments[index]


def decode(payload, frame: ReceivedFrame):
    """A numpy array or torch tensor over the received memory; ValueError when the payload is malformed."""
    desc = _check(payload)
    framework = desc.get("framework")
    if framework is None:
        framework = "numpy" if _importable("numpy") or not _importable("torch") else "torch"
    storage = desc["storage"]
    if storage["kind"] == "cuda":
        from . import tensors_cuda

        return tensors_cuda.decode(desc)
    if storage["kind"] == "shm" and "fd" not in storage:
        buffer = frame.named(storage.get("id"), storage["size"])
    elif storage["kind"] == "shm":
        buffer = frame.segment(storage.get("fd"), storage["size"])
    else:
        buffer = bytearray(frame.attachment(storage.get("attachment")))  # writable, like the shm case
    if framework == "torch" and not _importable("torch"):
        # A worker without torch gets what pyisolate 0.10 gives it: a numpy array, else its plain TensorValue dict.
        framework = "numpy" if _importable("numpy") else "value"
    if framework == "torch":
        return tensors_torch.decode(desc, buffer)
    if framework == "value" or not _importable("numpy"):
        from . import tensor_value

        return tensor_value.from_buffer(desc, buffer)
    return _to_numpy(desc, buffer)


def _check(payload) -> dict:
    if type(payload) is not dict:
        raise ValueError("$tensor payload must be an object")
    get = payload.get
    dtype, shape, strides, offset = get("dtype"), get("shape"), get("strides"), get("offset")
    if type(dtype) is not str or dtype not in DTYPES:  # a list or object cannot even be looked up
        raise ValueError(f"$tensor dtype {dtype!r} is not one of {sorted(DTYPES)}")
    if (
        type(shape) is not list
        or type(strides) is not list
        or len(shape) != len(strides)
        or type(offset) is not int
        or offset < 0
        or not naturals(shape)
        or not naturals(strides)
    ):
        raise ValueError("$tensor shape, strides and offset must be non-negative integers")
    storage = payload.get("storage")
    if type(storage) is not dict or storage.get("kind") not in ("shm", "bytes", "cuda"):
        raise ValueError("$tensor storage must be shm, bytes or cuda")
    if storage["kind"] == "shm" and (type(storage.get("size")) is not int or storage["size"] <= 0):
        raise ValueError("$tensor shm storage needs a positive size")
    return payload


def _importable(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is not None  # None: imports of it are blocked
    import importlib.util

    return importlib.util.find_spec(name) is not None


_NUMPY_DTYPES = {}  # wire name -> numpy dtype: np.dtype(name) parses the name on each call


def _numpy_dtype(np, name: str):
    if name != "bfloat16":
        dtype = _NUMPY_DTYPES.get(name)
        if dtype is None:
            dtype = _NUMPY_DTYPES[name] = np.dtype(name)
        return dtype
    try:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    except ImportError:
        warnings.warn(
            "numpy has no bfloat16 (install ml_dtypes for one): the array holds the raw bits as uint16", stacklevel=2
        )
        return np.dtype("uint16")


def _to_numpy(desc: dict, buffer):
    import numpy as np

    dtype = _numpy_dtype(np, desc["dtype"])
    shape = desc["shape"]
    if 0 in shape:  # ints only (_check)
        return np.empty(shape, dtype)
    item = dtype.itemsize
    return np.ndarray(shape, dtype, buffer, desc["offset"], [s * item for s in desc["strides"]])


def shared_empty(shape, dtype="float32", like: str = "numpy"):
    """An uninitialised (in fact zero-filled) array in shared memory: returning it to the host copies nothing.

    `like` is "numpy" or "torch"; `dtype` a name ("float32") or the framework's own dtype object.
    Where memfd is unavailable this is an ordinary array (copied when sent).
    """
    shape = [int(n) for n in (shape if isinstance(shape, (list, tuple)) else (shape,))]
    if like == "torch":
        return tensors_torch.shared_empty(shape, dtype)
    if like != "numpy":
        raise ValueError(f'like must be "numpy" or "torch", got {like!r}')
    import numpy as np

    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize
    for n in shape:
        nbytes *= n
    if nbytes == 0:
        return np.empty(shape, dtype)
    try:
        seg = segments.allocate(nbytes)
    except OSError:
        return np.zeros(shape, dtype)
    return np.ndarray(shape, dtype, buffer=seg)
