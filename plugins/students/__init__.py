"""Built-in students: supervised fine-tuning of Hugging Face causal LMs (full or LoRA, with
Bllossom-style vocabulary expansion and alignment pretraining)."""
