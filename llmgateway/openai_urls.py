"""The OpenAI-compatible API, mounted at /v1/."""

from django.urls import path

from llmgateway import openai_views

urlpatterns = [
    path("chat/completions", openai_views.chat_completions, name="openai-chat-completions"),
    path("models", openai_views.models, name="openai-models"),
]
