"""vLLM plugin entry point (group `vllm.general_plugins`)."""


def register() -> None:
    """Register the `smoothquant` quantization method with vLLM."""
    from vllm_sq import config  # noqa: F401  (registration happens on import)
