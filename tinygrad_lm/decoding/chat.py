"""A conversation with a chat model: the history rendered by the model's chat template (ChatML),
the reply generated with the KV cache until <|im_end|> (or the end-of-text token), printed as it
is made, and added to the history for the next turn.

    session = ChatSession(model, tokenizer, ChatML.from_template(template))
    session.send("What is the capital of France?")      # -> "The capital of France is Paris."
"""
from ..errors import ConfigError
from ..models.generation import check_sampling, generate


class ChatSession:
    def __init__(self, model, tokenizer, template, system=None, stop_tokens=("<|im_end|>", "<|endoftext|>")):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.messages = [] if system is None else [{"role": "system", "content": system}]
        self.stop_ids = [tokenizer.token_id(t) for t in stop_tokens if t in tokenizer.special_tokens]
        if not self.stop_ids:
            raise ConfigError(f"the tokenizer has none of the stop tokens {stop_tokens}: a reply would never end")

    def prompt_ids(self):
        """The history as the model reads it, ending where the assistant's reply begins."""
        return self.tokenizer.encode(self.template.render(self.messages, add_generation_prompt=True))

    def send(self, text, max_new_tokens=256, temperature=0.0, top_k=None, top_p=None, seed=None, on_text=None):
        """Add the user's message, generate the reply (greedy when temperature is 0), add it to the
        history and return it. on_text(piece): each new piece of the reply's text, as it is made."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("the message is empty")
        check_sampling(temperature, top_k, top_p, max_new_tokens, seed)
        self.messages.append({"role": "user", "content": text})
        prompt = self.prompt_ids()
        if len(prompt) + max_new_tokens > self.model.config.block_size:
            self.messages.pop()
            raise ConfigError(f"the conversation is {len(prompt)} tokens; with {max_new_tokens} more it passes the "
                              f"model's context of {self.model.config.block_size}: start a new one")
        made, shown = [], [""]

        def stream(ids):                      # decode what is there so far, print what is new
            if int(ids[0]) in self.stop_ids:
                return
            made.append(int(ids[0]))
            now = self.tokenizer.decode(made)
            if on_text is not None and not now.endswith("\ufffd"):       # wait for a whole character
                on_text(now[len(shown[0]):])
                shown[0] = now
        generate(self.model, [prompt], max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                 eos_token_id=self.stop_ids, streamer=stream)
        reply = self.tokenizer.decode(made)
        if on_text is not None and len(reply) > len(shown[0]):
            on_text(reply[len(shown[0]):])
        self.messages.append({"role": "assistant", "content": reply})
        return reply


def answer(model, tokenizer, template, messages, max_new_tokens=32, stop_tokens=("<|im_end|>", "<|endoftext|>")):
    """The model's greedy reply to a conversation (its messages before the reply), as text."""
    stops = [tokenizer.token_id(t) for t in stop_tokens if t in tokenizer.special_tokens]
    prompt = tokenizer.encode(template.render(messages, add_generation_prompt=True))
    out = generate(model, [prompt], max_new_tokens, temperature=0.0, eos_token_id=stops or None)[0, len(prompt):]
    made = out.tolist()
    for stop in stops:                        # the reply ends before its end-of-turn token
        if stop in made:
            made = made[:made.index(stop)]
    return tokenizer.decode(made)


def answer_exact_match(model, tokenizer, template, chats, max_new_tokens=32):
    """(exact matches, replies): for each chat, the greedy reply to every message before its last
    (an assistant's) against that last message's content, compared whole."""
    replies = [answer(model, tokenizer, template, chat[:-1], max_new_tokens) for chat in chats]
    right = sum(reply == chat[-1]["content"] for reply, chat in zip(replies, chats))
    return right, replies


def pairs_from_mistakes(model, tokenizer, template, chats, max_new_tokens=32,
                        special_tokens=("<|im_start|>", "<|im_end|>", "<|endoftext|>")):
    """(pairs, replies): preference pairs built from the model's own mistakes. For each chat (its
    last message the right answer), the greedy reply to the messages before it; where the reply is
    wrong, the pair (prompt, chosen = the right answer, rejected = the reply). A reply holding a
    special token's text is left out (a chat may not hold one)."""
    right, replies = answer_exact_match(model, tokenizer, template, chats, max_new_tokens)
    pairs = [(chat[:-1], chat[-1], {"role": "assistant", "content": reply}) for chat, reply in zip(chats, replies)
             if reply != chat[-1]["content"] and not any(t in reply for t in special_tokens)]
    return pairs, replies
