"""vllm-smoothquant: the `smoothquant` W8A8 INT8 quantization method for vLLM."""
