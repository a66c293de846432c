"""The live activity demo: every open tab publishes to one topic and sees everyone's events."""

from __future__ import annotations

import datetime
import json

from django.core.exceptions import BadRequest
from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import TemplateView

from dualstream.broadcast import TopicView, apublish

TOPIC = "demo-activity"
#: Bytes a publish may have: who (40 characters) and text (280), even written as \uXXXX escapes, fit.
MAX_BODY = 8 * 1024


@method_decorator(ensure_csrf_cookie, name="dispatch")  # the page's script sends the token back on each POST
class ActivityPageView(TemplateView):
    template_name = "demo/activity.html"


class ActivityFeed(TopicView):
    """The topic as a dualstream URL: a new tab starts with the latest 20 events, a reconnecting one replays."""

    topic = TOPIC
    recent = 20
    history_size = 20


class ActivityPublish(View):
    """POST ``{"who", "text"}`` (CSRF-protected like any Django form): published to every tab, on every worker."""

    async def post(self, request: HttpRequest) -> JsonResponse:
        if len(request.body) > MAX_BODY:  # parsed on the event loop: megabytes of JSON would stall it
            raise BadRequest(f"Send at most {MAX_BODY} bytes.")
        try:
            body = json.loads(request.body)
            who, text = str(body["who"])[:40], str(body["text"])[:280]
        except (ValueError, KeyError, TypeError):
            raise BadRequest("Send JSON {'who': ..., 'text': ...}.") from None
        if not text.strip():
            raise BadRequest("Say something.")
        at = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        try:
            event_id = await apublish(TOPIC, {"who": who, "text": text, "at": at})
        except ValueError as exc:  # text that cannot be sent on (a lone surrogate): the sender's fault
            raise BadRequest(str(exc)) from None
        return JsonResponse({"id": event_id}, status=201)
