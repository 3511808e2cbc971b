"""Every error tinygrad_lm raises on purpose, under one base class.

    TinygradLMError
      ConfigError           a setting out of range (TrainConfig, GPTConfig, sampling, CLI flags)
      DeviceError           a device that is not there, or tensors on two devices
      GradientShapeError    a backward returned the wrong shape or dtype (a bug in that op)
      DataError             a dataset that is missing, short or corrupt; SequenceFileError (a
                            FASTA, GenBank or metadata file that breaks its format)
      DownloadError         a file that could not be fetched (offline, bad checksum)
      TokenizerError        TokenizerFileError (an unreadable tokenizer file), EncodeError (text
                            a tokenizer will not encode), DecodeError (ids it will not decode)
      CheckpointError       a checkpoint that cannot be read, written or resumed; StateDictError
                            (a state_dict that does not fit the module)
      SafetensorsError      a .safetensors file that breaks the format
      PretrainedError       a Hugging Face folder that is not what it should be
      TrainingDiverged      the loss became NaN or infinite

The command line catches ``TinygradLMError`` and prints its message as one ``error:`` line.
Each class also derives from the built-in exception it used to be (ValueError, RuntimeError),
so ``except ValueError`` keeps working.
"""


class TinygradLMError(Exception):
    """The base of every error tinygrad_lm raises on purpose: its message says what to do."""


class ConfigError(TinygradLMError, ValueError):
    """A setting that would run without error but mean nothing, or not run at all."""


class DeviceError(TinygradLMError, RuntimeError):
    """A device that cannot be used (no CuPy, no GPU), or tensors on different devices."""


class GradientShapeError(TinygradLMError, RuntimeError):
    """A backward returned a gradient whose shape or dtype is not its input's: a bug in that op."""


class DataError(TinygradLMError, ValueError):
    """A dataset folder or token file that is missing, too short or corrupt."""


class SequenceFileError(DataError):
    """A FASTA, GenBank or metadata file that breaks its format; the message names the line."""


class DownloadError(TinygradLMError, RuntimeError):
    """A public file could not be fetched, or its checksum is wrong."""


class TokenizerError(TinygradLMError, ValueError):
    """Anything a tokenizer refuses."""


class TokenizerFileError(TokenizerError):
    """A tokenizer file (JSON, GPT-2's encoder.json / vocab.bpe) that is missing or malformed."""


class EncodeError(TokenizerError):
    """Text that a tokenizer will not encode (an unknown character, a disallowed special token)."""


class DecodeError(TokenizerError):
    """Token ids that a tokenizer will not decode (not integers, or outside its vocabulary)."""


class CheckpointError(TinygradLMError, ValueError):
    """A checkpoint that cannot be read, written, or resumed on the data given."""


class StateDictError(CheckpointError, KeyError):
    """A state_dict that does not fit a module: missing, unexpected or mis-shaped entries, or
    values that are not arrays of numbers. A CheckpointError (one ``error:`` line on the command
    line) and, as before, a KeyError; its message prints plainly, not quoted as KeyError's."""

    __str__ = Exception.__str__


class SafetensorsError(TinygradLMError, ValueError):
    """A .safetensors file that breaks the format (header, dtype, byte ranges)."""


class PretrainedError(TinygradLMError, ValueError):
    """A Hugging Face model folder or name that cannot be used."""


class TrainingDiverged(TinygradLMError, RuntimeError):
    """The loss became NaN or infinite."""
