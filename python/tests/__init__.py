"""Tests of the Python guest runtime (unittest; real sockets and processes, no mocks)."""
