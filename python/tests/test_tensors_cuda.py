"""CUDA tensors as IPC handles between real processes, with the test playing the host (skipped without a GPU).

The test stamps the host's key into descriptors and delivers them by pipe, as the Node host does by socket.
"""

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


class _NowLoop:
    """Stands in for the event loop a ReleaseBatch posts to: runs the flush at once."""

    def call_soon_threadsafe(self, fn):
        fn()


def _consumer(conn):
    """Opens what it is sent and does what it is told; reports what it saw and the keys it released."""
    import gc

    import torch as t

    from pyisolate._guest import tensors_cuda as tc

    released = []
    tc.releases.bind(_NowLoop(), released.extend)
    held = {}
    while True:
        order = json.loads(conn.recv())
        op = order["op"]
        # No tensor may stay in a local of this loop: it would keep the storage (and its release) alive.
        if op == "open":
            try:
                held[order["name"]] = tc.decode(order["desc"])
            except RuntimeError as e:
                conn.send(json.dumps({"error": str(e), "released": released}))
                continue
            t.cuda.synchronize()
            tensor = held[order["name"]]
            report = {"sum": float(tensor.float().sum()), "shape": list(tensor.shape)}
            del tensor
            conn.send(json.dumps(report))
        elif op == "double":
            held[order["name"]].mul_(2)
            t.cuda.synchronize()
            conn.send(json.dumps({}))
        elif op == "send_on":  # a slice of what it was given, sent back the way it came
            conn.send(json.dumps(tc.encode(t, held[order["name"]][1:], "float32")))
        elif op == "drop":
            start = len(released)
            view = held[order["name"]][:1]  # a view keeps the storage: nothing is released until it goes too
            del held[order["name"]]
            gc.collect()
            before = released[start:]
            del view
            gc.collect()
            conn.send(json.dumps({"released_with_view_alive": before, "released": released[start:]}))
        elif op == "imported":
            conn.send(json.dumps({"count": tc.imported_count()}))
        elif op == "exit":
            conn.close()
            return


def _start_consumer(ctx):
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_consumer, args=(child,))
    proc.start()
    return parent, proc


def _ask(conn, **order):
    conn.send(json.dumps(order))
    return json.loads(conn.recv())


def _delivered(desc: dict, key: str) -> dict:
    """What the host sends a consumer: the producer's descriptor with the host's key."""
    out = json.loads(json.dumps(desc))
    out["storage"]["ipc"]["key"] = key
    return out


@unittest.skipUnless(CUDA, SKIP_REASON)
class CudaIpcTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
        os.environ["PYTHONPATH"] = root + os.pathsep + os.environ.get("PYTHONPATH", "")
        ctx = multiprocessing.get_context("spawn")
        cls.b, cls.proc_b = _start_consumer(ctx)
        cls.c, cls.proc_c = _start_consumer(ctx)

    @classmethod
    def tearDownClass(cls):
        for conn, proc in ((cls.b, cls.proc_b), (cls.c, cls.proc_c)):
            conn.send(json.dumps({"op": "exit"}))
            proc.join(30)

    def test_a_view_crosses_as_a_handle_and_is_the_same_memory(self):
        x = torch.arange(1024, dtype=torch.float32, device="cuda").reshape(32, 32)
        desc = _delivered(tensors_cuda.encode(torch, x.t(), "float32"), "k-view")
        report = _ask(self.b, op="open", name="v", desc=desc)
        self.assertEqual((report["shape"], report["sum"]), ([32, 32], float(sum(range(1024)))))
        _ask(self.b, op="double", name="v")
        torch.cuda.synchronize()
        self.assertTrue(torch.equal(x, torch.arange(1024, dtype=torch.float32, device="cuda").reshape(32, 32) * 2))
        self.assertEqual(_ask(self.b, op="drop", name="v")["released"], ["k-view"])
        tensors_cuda.release_exports([desc["storage"]["ipc"]["export"]])

    def test_two_consumers_hold_it_after_the_producer_dropped_it_and_it_is_freed_when_the_host_says(self):
        torch.cuda.synchronize()
        baseline = torch.cuda.memory_allocated()
        y = torch.full((1 << 22,), 3.0, device="cuda")  # 16 MiB
        desc = tensors_cuda.encode(torch, y, "float32")
        export = desc["storage"]["ipc"]["export"]
        del y  # the producer's own reference goes: the export keeps the memory
        torch.cuda.empty_cache()
        delivered = _delivered(desc, "k-two")
        self.assertEqual(_ask(self.b, op="open", name="y", desc=delivered)["sum"], 3.0 * (1 << 22))
        self.assertEqual(_ask(self.c, op="open", name="y", desc=delivered)["sum"], 3.0 * (1 << 22))
        drop_b = _ask(self.b, op="drop", name="y")
        self.assertEqual(drop_b["released_with_view_alive"], [], "a live view keeps the storage")
        self.assertEqual(drop_b["released"], ["k-two"])
        # The first consumer let go: the second still reads the data (torch's counter no longer decides).
        _ask(self.c, op="double", name="y")
        self.assertEqual(_ask(self.c, op="send_on", name="y")["storage"]["ipc"]["key"], "k-two")
        self.assertEqual(_ask(self.c, op="drop", name="y")["released"], ["k-two"])
        self.assertGreaterEqual(torch.cuda.memory_allocated() - baseline, 4 << 22, "still kept for the host")
        tensors_cuda.release_exports([export])
        torch.cuda.synchronize()
        self.assertEqual(torch.cuda.memory_allocated(), baseline, "freed as soon as the host released it")
        self.assertEqual(_ask(self.c, op="imported")["count"], 0)

    def test_a_consumer_sends_it_on_with_the_producers_handle(self):
        z = torch.arange(8, dtype=torch.float32, device="cuda")
        desc = tensors_cuda.encode(torch, z, "float32")
        _ask(self.b, op="open", name="z", desc=_delivered(desc, "k-on"))
        on = _ask(self.b, op="send_on", name="z")
        self.assertEqual(on["storage"]["ipc"]["handle"], desc["storage"]["ipc"]["handle"])
        self.assertEqual((on["shape"], on["offset"]), ([7], 4))
        # Sent on to another consumer: it opens the same memory.
        self.assertEqual(_ask(self.c, op="open", name="z", desc=on)["sum"], float(sum(range(1, 8))))
        # And back to the producer: rebuilt over its own storage.
        back = tensors_cuda.decode(json.loads(json.dumps(on)))
        self.assertEqual(back.data_ptr(), z.data_ptr() + 4)
        for conn in (self.b, self.c):
            _ask(conn, op="drop", name="z")
        tensors_cuda.release_exports([desc["storage"]["ipc"]["export"]])

    def test_a_mismatch_is_an_error_and_still_released(self):
        w = torch.ones(4, device="cuda")
        desc = tensors_cuda.encode(torch, w, "float32")
        for field, value, words in (("cuda", "0.0", "CUDA 0.0"), ("device", 99, "device 99")):
            bad = _delivered(desc, f"k-bad-{field}")
            if field == "device":
                bad["storage"]["device"] = value
            else:
                bad["storage"]["ipc"]["cuda"] = value
            report = _ask(self.b, op="open", name="w", desc=bad)
            self.assertIn(words, report["error"])
            self.assertEqual(report["released"][-1], f"k-bad-{field}")
        tensors_cuda.release_exports([desc["storage"]["ipc"]["export"]])

    def test_a_tensor_that_comes_back_to_its_producer_is_rebuilt_until_released(self):
        x = torch.arange(12, dtype=torch.float16, device="cuda").reshape(3, 4)
        desc = json.loads(json.dumps(tensors_cuda.encode(torch, x[1:], "float16")))
        back = tensors_cuda.decode(desc)
        self.assertEqual(back.data_ptr(), x[1:].data_ptr())
        self.assertTrue(torch.equal(back, x[1:]))
        tensors_cuda.release_exports([desc["storage"]["ipc"]["export"]])
        with self.assertRaisesRegex(RuntimeError, "released"):
            tensors_cuda.decode(desc)


if __name__ == "__main__":
    unittest.main()
