"""The Llama family's PyTorch twin: transformers' LlamaForCausalLM with our config's fields (and
eager attention), forward(input_ids, targets) -> (logits, loss) as ours. Needs torch and
transformers; used by bench and tests/test_llama.py."""
import torch.nn as tnn


def hf_config(config, **extra):
    """transformers' LlamaConfig (or Qwen2Config) with our config's fields."""
    import transformers
    fields = dict(config.to_dict(), num_key_value_heads=config.kv_heads, head_dim=config.head_size)
    if config.model_type == "qwen2":
        for name in ("attention_bias", "mlp_bias"):
            fields.pop(name)
        return transformers.Qwen2Config(**fields, **extra)
    return transformers.LlamaConfig(**fields, **extra)


def hf_model(config, **extra):
    """transformers' LlamaForCausalLM (or Qwen2ForCausalLM) for our config, random weights."""
    import transformers
    cls = transformers.Qwen2ForCausalLM if config.model_type == "qwen2" else transformers.LlamaForCausalLM
    return cls(hf_config(config, **extra))


class LoopForward(tnn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, targets=None):
        logits = self.model(input_ids=input_ids).logits
        loss = None
        if targets is not None:
            import torch.nn.functional as TF
            loss = TF.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss


def bench_twin(config, device):
    return LoopForward(hf_model(config, attn_implementation="sdpa")).to(device)
