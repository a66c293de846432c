"""The LLM test endpoints, each at OpenAI's paths below its own prefix (an SDK's base_url ends in /v1)."""

from django.contrib.auth.decorators import login_required
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from dualstream.llm import ModelDetailView, ModelListView
from dualstream.llm.proxy import ChatCompletionProxyView
from project.demo.llm import MODEL, DemoChatView

from . import llm_views

#: The keys the keyed endpoints accept.
API_KEY, PROXY_KEY = "sk-test", "sk-proxy"
#: The proxy's models: the names its clients use, and the upstream's names for them.
PROXY_MODELS = {MODEL: MODEL, "alias": MODEL, "any": "any", "missing": "gpt-nothing"}

urlpatterns = [
    path("auth/v1/chat/completions", DemoChatView.as_view(api_keys=[API_KEY])),
    path("auth/v1/models", ModelListView.as_view(models=[MODEL], api_keys=[API_KEY])),
    path("auth/v1/models/<path:model>", ModelDetailView.as_view(models=[MODEL], api_keys=[API_KEY])),
    path("scripted/v1/chat/completions", llm_views.ScriptedChatView.as_view()),
    path("login/v1/chat/completions", login_required(llm_views.ScriptedChatView.as_view())),
    path("tools/v1/chat/completions", llm_views.ToolCallChatView.as_view()),
    # Its upstream is set by each test (DUALSTREAM["LLM"]["UPSTREAM_URL"]): the live server's URL is known only then.
    path("proxy/v1/chat/completions", ChatCompletionProxyView.as_view(api_keys=[PROXY_KEY], models=PROXY_MODELS)),
    path("proxy/v1/models", ModelListView.as_view(api_keys=[PROXY_KEY], models=PROXY_MODELS)),
    path("upstream/<str:script>/v1/chat/completions", csrf_exempt(llm_views.scripted_upstream)),
    path("data-only/", llm_views.DataOnlyView.as_view()),
    path("counting/v1/chat/completions", llm_views.ThreadRecordingChatView.as_view()),
]
