"""The OpenAI-compatible API at /v1/: chat completions and models, for any OpenAI client.

Served by the lean WSGI handler (corporate/handlers.py); the views hand each
request as it arrived to the gateway's entry point (gateway/entry.py).
"""
