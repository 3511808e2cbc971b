"""Files in and out: downloads with checksums, safetensors, Hugging Face folders.

Below the tokenizers and the models (which read their files through here); imports only the
engine."""
