"""toyllm: a tiny LLM-like inference server, a stand-in for vLLM in perfarena's examples."""
