"""Benchmarks of the project against bf16 and vLLM's own INT8 path (run as `python -m benchmarks.<name>`)."""
