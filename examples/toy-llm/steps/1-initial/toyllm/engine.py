"""The toy model: prefill costs time per prompt token, decode costs time per output token.

One lock stands for the GPU: every step holds it, so concurrent requests share its time.
"""
import threading
import time

from toyllm import _C

GPU = threading.Lock()


def tokenize(prompt):
    return prompt.split()


class Engine:
    def __init__(self, model):
        self.model = model

    def prefill(self, tokens):
        with GPU:
            time.sleep(len(tokens) * _C.PREFILL_MS_PER_TOKEN / 1000.0)

    def generate(self, prompt, max_tokens):
        """Yields output tokens one by one."""
        tokens = tokenize(prompt)
        self.prefill(tokens)
        for idx in range(max_tokens):
            with GPU:
                time.sleep(_C.DECODE_MS_PER_TOKEN / 1000.0)
            yield f"tok{idx}"
