"""Built-in scoring backends: transformers, vLLM and lm-eval."""
