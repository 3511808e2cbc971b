"""Layers (as torch.nn): Module and Parameter, the basic layers, positional encodings, attention."""
from . import functional, init
from .attention import CausalSelfAttention, Head, KVCache, MultiHeadAttention
from .layers import GELU, Dropout, Embedding, LayerNorm, Linear, ReLU
from .module import Module, ModuleList, Parameter, Sequential, functional_call
from .positional import LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "Linear", "Embedding", "LayerNorm",
           "Dropout", "ReLU", "GELU", "Head", "MultiHeadAttention", "CausalSelfAttention", "KVCache",
           "LearnedPositionalEmbedding", "SinusoidalPositionalEncoding", "RotaryEmbedding",
           "functional", "init", "functional_call"]
