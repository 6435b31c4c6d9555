"""The OpenAI-compatible API, mounted at /v1/."""

from django.urls import path

from llmgateway.v1 import views

urlpatterns = [
    path("chat/completions", views.chat_completions, name="openai-chat-completions"),
    path("responses", views.responses, name="openai-responses"),
    path("completions", views.completions, name="openai-completions"),
    path("embeddings", views.embeddings, name="openai-embeddings"),
    path("models", views.models, name="openai-models"),
    # A model's name may hold slashes ("org/model"), as the client sends it.
    path("models/<path:model>", views.model_detail, name="openai-model"),
]
