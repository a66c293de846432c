from django.urls import include, path

urlpatterns = [
    path("", include("project.demo.urls")),
]
