"""Layers (as torch.nn): Module and Parameter, the basic layers, positional encodings, attention,
recurrent layers, the encoder-decoder Transformer. (``MultiHeadAttention`` is the seed tutorial's
per-head causal module; ``MultiheadAttention`` is torch.nn.MultiheadAttention's.)"""
from . import functional, init
from .attention import AttentionProbs, CausalSelfAttention, Head, KVCache, MultiHeadAttention, capture_attention
from .layers import GELU, Dropout, Embedding, LayerNorm, Linear, ReLU, RMSNorm
from .lora import LoraConfig, LoraLinear, get_peft_model, lora_layers, merge_and_unload, unload
from .module import Module, ModuleList, Parameter, Sequential, eval_mode, functional_call
from .positional import LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding, rope_inv_freq
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .transformer import (MultiheadAttention, Transformer, TransformerDecoder, TransformerDecoderLayer,
                          TransformerEncoder, TransformerEncoderLayer)

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "Linear", "Embedding", "LayerNorm", "RMSNorm",
           "Dropout", "ReLU", "GELU", "Head", "MultiHeadAttention", "CausalSelfAttention", "KVCache",
           "LearnedPositionalEmbedding", "SinusoidalPositionalEncoding", "RotaryEmbedding", "rope_inv_freq",
           "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
           "MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerDecoder",
           "TransformerEncoderLayer", "TransformerDecoderLayer",
           "LoraConfig", "LoraLinear", "get_peft_model", "lora_layers", "merge_and_unload", "unload",
           "functional", "init", "functional_call", "eval_mode", "AttentionProbs", "capture_attention"]
