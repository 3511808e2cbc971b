"""Turning a trained model's outputs back into text: beam search for encoder-decoders, translation,
fill-mask. (Sampling with a KV cache is `models.generation`: the models' own `.generate` uses it.)

Above the models, below training."""
