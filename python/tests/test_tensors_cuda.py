"""CUDA tensors as IPC handles between two real processes (skipped where torch sees no GPU)."""

import json
import multiprocessing
import os
import unittest

try:
    import torch
    CUDA = torch.cuda.is_available()
except ImportError:  # the system python of the development machines has no torch
    torch = None
    CUDA = False

from pyisolate._guest import tensors_cuda

SKIP_REASON = "no CUDA device visible to torch (or torch not installed): CUDA IPC needs a GPU"


def _consumer(conn):
    """Opens what the producer sent, doubles it in place, reports the sum, then drops it."""
    import torch as t
    from pyisolate._guest import tensors_cuda as tc

    desc = json.loads(conn.recv())
    tensor = tc.decode(desc)
    before = float(tensor.sum())
    tensor.mul_(2)
    t.cuda.synchronize()
    conn.send(json.dumps({"device": str(tensor.device), "shape": list(tensor.shape), "before": before,
                          "requires_grad": tensor.requires_grad}))
    del tensor
    desc2 = json.loads(conn.recv())  # a descriptor whose producer already dropped its tensor
    late = tc.decode(desc2)
    conn.send(json.dumps({"late_sum": float(late.sum())}))
    for broken in ("cuda", "device"):
        bad = json.loads(json.dumps(desc))
        if broken == "cuda":
            bad["storage"]["ipc"]["cuda"] = "0.0"
        else:
            bad["storage"]["device"] = 99
        try:
            tc.decode(bad)
            conn.send("no error")
        except RuntimeError as e:
            conn.send(str(e))
    conn.close()


@unittest.skipUnless(CUDA, SKIP_REASON)
class CudaIpcTest(unittest.TestCase):
    def test_a_tensor_crosses_as_a_handle_and_is_the_same_memory(self):
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        env_path = os.path.join(os.path.dirname(__file__), "..")
        os.environ["PYTHONPATH"] = os.path.abspath(env_path) + os.pathsep + os.environ.get("PYTHONPATH", "")
        proc = ctx.Process(target=_consumer, args=(child,))
        proc.start()
        x = torch.arange(1024, dtype=torch.float32, device="cuda").reshape(32, 32)
        view = x.t()  # a non-contiguous view: strides and offset must be kept
        parent.send(json.dumps(tensors_cuda.encode(torch, view, "float32")))
        report = json.loads(parent.recv())
        self.assertEqual(report["shape"], [32, 32])
        self.assertEqual(report["before"], float(sum(range(1024))))
        torch.cuda.synchronize()
        self.assertTrue(torch.equal(x, torch.arange(1024, dtype=torch.float32, device="cuda").reshape(32, 32) * 2))

        y = torch.full((1 << 20,), 3.0, device="cuda")
        desc = tensors_cuda.encode(torch, y, "float32")
        del y  # torch keeps the storage alive (its IPC limbo) until the consumer dropped it
        torch.cuda.empty_cache()
        parent.send(json.dumps(desc))
        self.assertEqual(json.loads(parent.recv())["late_sum"], 3.0 * (1 << 20))
        self.assertIn("CUDA 0.0", parent.recv())
        self.assertIn("device 99", parent.recv())
        proc.join(30)
        self.assertEqual(proc.exitcode, 0)

    def test_a_tensor_that_comes_back_to_its_producer_is_rebuilt_locally(self):
        x = torch.arange(12, dtype=torch.float16, device="cuda").reshape(3, 4)
        sent = x[1:]  # what the extension returned and still holds
        desc = json.loads(json.dumps(tensors_cuda.encode(torch, sent, "float16")))
        back = tensors_cuda.decode(desc)
        self.assertEqual(back.data_ptr(), sent.data_ptr())
        self.assertTrue(torch.equal(back, sent))


if __name__ == "__main__":
    unittest.main()
