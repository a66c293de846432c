"""Every topic at ``<prefix>/<topic>/``, readable where ``DUALSTREAM["BROADCAST"]["AUTHORIZE"]`` allows it.

urlpatterns = [path("topics/", include("dualstream.broadcast.urls"))]
# reverse("dualstream-broadcast:topic", args=["orders"]) -> "/topics/orders/"
"""

from django.urls import path

from .views import URLTopicView

app_name = "dualstream-broadcast"
urlpatterns = [path("<str:topic>/", URLTopicView.as_view(), name="topic")]
