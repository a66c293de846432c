import os

from dualstream.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Static files come from ServeStaticMiddleware (settings.MIDDLEWARE), as in a production project.
# dualstream's: Django's, whose streams' producers write their events themselves, and where a server's
# cancellation of a request (uvicorn's graceful-shutdown timeout, hypercorn at shutdown) ends its stream
# as a disconnect would.
application = get_asgi_application()
