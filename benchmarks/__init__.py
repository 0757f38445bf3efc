"""``make bench``: measured figures for Orosflow (receipts, time-to-notify, burst, overhead).

Run with ``uv run python -m benchmarks.run``; it writes ``docs/benchmarks.md``.
"""
