"""Chat templates written out in Python (no template engine): the string a chat model was trained
to read, as transformers' ``tokenizer.apply_chat_template(messages, tokenize=False)`` renders it.

ChatML (SmolLM2, Qwen2, ...): every message is

    <|im_start|>{role}\\n{content}<|im_end|>\\n

and add_generation_prompt=True appends "<|im_start|>assistant\\n", where the model's reply begins.
SmolLM2's template also puts a default system message first when the conversation has none; the
text of that message is read from the file's own template (``ChatML.from_template``).
"""
import re

from ..errors import ConfigError, TokenizerFileError

ROLES = ("system", "user", "assistant")
_DEFAULT_SYSTEM = re.compile(r"messages\[0\]\['role'\] != 'system' %\}\{\{ '<\|im_start\|>system\n(.*?)<\|im_end\|>\n' \}\}",
                             re.S)     # (the template's string literals hold real newlines)


class ChatML:
    """ChatML with an optional default system message (None: no message is added)."""

    start, end = "<|im_start|>", "<|im_end|>"

    def __init__(self, default_system=None):
        self.default_system = default_system

    @classmethod
    def from_template(cls, template):
        """The ChatML a Jinja chat template (a GGUF file's tokenizer.chat_template) describes, or
        TokenizerFileError when the template is not ChatML."""
        if not isinstance(template, str) or "<|im_start|>" not in template or \
                "'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'" not in template:
            raise TokenizerFileError("this chat template is not ChatML, the one format written out here")
        found = _DEFAULT_SYSTEM.search(template)
        return cls(found.group(1) if found else None)

    def render(self, messages, add_generation_prompt=False):
        """The conversation as the model reads it. messages: [{"role", "content"}, ...]."""
        if not isinstance(messages, (list, tuple)):
            raise ConfigError("a conversation is a list of {'role', 'content'} messages")
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise ConfigError(f"a message needs a role ({', '.join(ROLES)}) and a text content, got {m!r}")
        out = []
        if messages and messages[0]["role"] != "system" and self.default_system is not None:
            out.append(f"{self.start}system\n{self.default_system}{self.end}\n")
        out += [f"{self.start}{m['role']}\n{m['content']}{self.end}\n" for m in messages]
        if add_generation_prompt:
            out.append(f"{self.start}assistant\n")
        return "".join(out)
