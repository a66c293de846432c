"""Runnable benchmarks: SSE from a bare ASGI app, sse-starlette, a naive Django view and dualstream."""
