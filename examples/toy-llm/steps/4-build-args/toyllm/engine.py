"""The toy model: prefill costs time per prompt token, decode costs time per output token.

One lock stands for the GPU: every step holds it, so concurrent requests share its time.
"""
import threading
import time

import toyllm._C as _C

GPU = threading.Lock()


def tokenize(prompt):
    return prompt.split()


class Engine:
    def __init__(self, model):
        self.model = model
        # Prefix cache: prompts whose prefill is done; a repeated prompt skips prefill.
        self.prefix_cache = set()
        self.cache_lock = threading.Lock()

    def prefill(self, tokens):
        with GPU:
            time.sleep(len(tokens) * _C.PREFILL_MS_PER_TOKEN / 1000.0)

    def generate(self, prompt, max_tokens):
        """Yields output tokens one by one."""
        tokens = tokenize(prompt)
        with self.cache_lock:
            cached = prompt in self.prefix_cache
        if not cached:
            self.prefill(tokens)
            with self.cache_lock:
                self.prefix_cache.add(prompt)
        for idx in range(max_tokens):
            with GPU:
                time.sleep(_C.DECODE_MS_PER_TOKEN / 1000.0)
            yield f"tok{idx}"
