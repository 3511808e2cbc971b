"""models/seq2seq.py written on torch.nn.Transformer, for the step-time benchmark: a shared
embedding scaled by sqrt(d_model), sinusoidal positions, pre-LayerNorm (norm_first), key padding
masks, a causal mask, a tied head; forward(src, tgt_in, tgt_out) -> (logits, loss without PAD)."""
import math

import torch


class Seq2Seq(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c.d_model
        self.c = c
        self.embed = torch.nn.Embedding(c.src_vocab_size, d, padding_idx=c.pad_id)
        torch.nn.init.normal_(self.embed.weight, std=d ** -0.5)
        position = torch.arange(c.block_size)[:, None]
        freq = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
        pe = torch.zeros(c.block_size, d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
        self.register_buffer("pe", pe)
        self.transformer = torch.nn.Transformer(d, c.nhead, c.num_encoder_layers, c.num_decoder_layers,
                                                c.dim_feedforward, c.dropout, c.activation, batch_first=True,
                                                norm_first=c.norm_first, layer_norm_eps=c.layer_norm_eps)
        self.head = torch.nn.Linear(d, c.tgt_vocab_size, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, src, tgt_in, tgt_out=None):
        c, d = self.c, self.c.d_model
        x = self.embed(src) * d ** 0.5 + self.pe[:src.shape[1]]
        y = self.embed(tgt_in) * d ** 0.5 + self.pe[:tgt_in.shape[1]]
        causal = torch.nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], dtype=torch.bool,
                                                                  device=tgt_in.device)
        src_pad, tgt_pad = src == c.pad_id, tgt_in == c.pad_id
        h = self.transformer(x, y, tgt_mask=causal, src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
                             memory_key_padding_mask=src_pad)
        logits = self.head(h)
        loss = None if tgt_out is None else torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), tgt_out.flatten(), ignore_index=c.pad_id)
        return logits, loss


def bench_twin(config, device):
    """The benchmark's PyTorch twin (models/family.py ``torch_twin``)."""
    return Seq2Seq(config).to(device)
