"""Streaming recognition: `StreamingSession` and the per-pass stream state it drives, block by block."""
