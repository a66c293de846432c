from django.urls import path

from dualstream.llm import ModelDetailView, ModelListView

from . import activity, exports, live, llm, tabs, views

app_name = "demo"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("ticker/", views.TickerPageView.as_view(), name="ticker-page"),
    path("api/ticker/", views.TickerView.as_view(), name="ticker"),
    path("reconnect/", views.ReconnectPageView.as_view(), name="reconnect-page"),
    path("api/feed/", views.FeedView.as_view(), name="feed"),
    path("errors/", views.ErrorsPageView.as_view(), name="errors-page"),
    path("api/flaky/", views.FlakyView.as_view(), name="flaky"),
    path("export/", exports.ExportPageView.as_view(), name="export-page"),
    path("api/readings/", exports.ReadingExport.as_view(), name="readings"),
    path("live/htmx/", live.LivePageView.as_view(library="htmx"), name="live-htmx"),
    path("live/datastar/", live.LivePageView.as_view(library="datastar"), name="live-datastar"),
    path("api/live/", live.LiveFeed.as_view(), name="live-feed"),
    path("activity/", activity.ActivityPageView.as_view(), name="activity-page"),
    path("api/activity/", activity.ActivityFeed.as_view(), name="activity"),
    path("api/activity/publish/", activity.ActivityPublish.as_view(), name="activity-publish"),
    path("tabs/", tabs.TabsPageView.as_view(), name="tabs-page"),
    path("api/clock/", tabs.ClockView.as_view(), name="clock"),
    path("chat/", llm.ChatPageView.as_view(), name="chat-page"),
    # OpenAI's paths, so that base_url="http://host/v1" works in every OpenAI client.
    path("v1/chat/completions", llm.DemoChatView.as_view(), name="chat-completions"),
    path("v1/models", ModelListView.as_view(models=[llm.MODEL]), name="models"),
    path("v1/models/<path:model>", ModelDetailView.as_view(models=[llm.MODEL]), name="model"),
]
