"""A local stand-in for TikTok (Research API, web pages, media) and an OpenAI-compatible LLM.

Real clients talk to it over HTTP through their configurable base URLs; faults are injected by
configuration. Researchers use it to try gettok before their API access is approved.
"""
