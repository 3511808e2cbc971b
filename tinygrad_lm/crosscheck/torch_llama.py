"""The Llama family's PyTorch twin: transformers' LlamaForCausalLM with our config's fields (and
eager attention), forward(input_ids, targets) -> (logits, loss) as ours. Needs torch and
transformers; used by bench and tests/test_llama.py."""
import torch.nn as tnn


def hf_config(config, **extra):
    import transformers
    fields = dict(config.to_dict(), num_key_value_heads=config.kv_heads, head_dim=config.head_size)
    return transformers.LlamaConfig(**fields, **extra)


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
    import transformers
    return LoopForward(transformers.LlamaForCausalLM(hf_config(config, attn_implementation="sdpa"))).to(device)
