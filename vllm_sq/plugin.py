"""vLLM plugin entry point (group `vllm.general_plugins`), loaded in every vLLM process."""

TORCH_INT_ARCH = "Int8OPTForCausalLM"


def register() -> None:
    """Register the `smoothquant` quantization method and the torch-int OPT architecture with vLLM."""
    from vllm import ModelRegistry

    from vllm_sq import config  # noqa: F401  (registration happens on import)

    if TORCH_INT_ARCH not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(TORCH_INT_ARCH, "vllm_sq.torch_int_opt:Int8OPTForCausalLM")
