from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("ticker/", views.TickerPageView.as_view(), name="ticker-page"),
    path("api/ticker/", views.TickerView.as_view(), name="ticker"),
]
