from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from dualstream import Mode

from . import views

urlpatterns = [
    path("count/", views.CountView.as_view(), name="count"),
    path("count-sse/", views.CountView.as_view(default_mode="sse"), name="count-sse"),
    path("count-streamed/", views.CountView.as_view(batch_streaming=True), name="count-streamed"),
    path("count-csrf-exempt/", csrf_exempt(views.CountView.as_view())),
    path("count-decorated/", views.DecoratedDispatchView.as_view()),
    path("count-stream-only/", views.CountView.as_view(modes=[Mode.SSE, Mode.NDJSON])),
    path("count-batch-only/", views.CountView.as_view(modes=["json"], default_mode="sse")),
    path("endless-stream-only/", views.EndlessStreamView.as_view()),
    path("endless-bounded-batch/", views.EndlessView.as_view(max_batch_items=100)),
    path("mixed/", views.MixedView.as_view()),
    path("endless/", views.EndlessView.as_view()),
    path("slow-start/", views.SlowStartView.as_view(heartbeat=0.1)),
    path("slow-start-no-hb/", views.SlowStartView.as_view(heartbeat=None)),
    path("bad-item/", views.BadItemView.as_view()),
    path("resumable/", views.ResumableView.as_view()),
    path("tick/", views.TickView.as_view()),
    path("tick-hold/", views.TickView.as_view(release_request_thread=False)),
    path("tick-cut/", views.TickView.as_view(max_duration=0.2)),
    path("retry/", views.RetryView.as_view()),
    path("paced/", views.PacedView.as_view(heartbeat=0.02)),
    path("csrf-page/", views.csrf_page),
    path("llm/", include("tests.support.llm_urls")),
    path("qs/", include("tests.support.queryset_views")),
    path("storm/", include("tests.support.storm_views")),
    path("auth/", include("tests.support.auth_views")),
    path("docs/querysets/", include("tests.support.docs_querysets_views")),
    path("html/", include("tests.support.html_views")),
    path("", include("project.demo.urls")),
]

# Decorators refuse before a view runs: this makes their 403 the view's own JSON (tests/unit/test_auth.py).
handler403 = "dualstream.auth.permission_denied"
