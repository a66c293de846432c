import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# The demo serves its own assets, even with DEBUG off; a real site lets nginx or WhiteNoise do it.
application = ASGIStaticFilesHandler(get_asgi_application())
