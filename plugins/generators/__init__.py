"""Built-in data generators: topic, scenario and context prompts, improvement, responses and
translation."""
