"""Built-in teachers: OpenAI-compatible endpoints, local transformers models and vLLM."""
