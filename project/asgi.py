import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Static files come from ServeStaticMiddleware (settings.MIDDLEWARE), as in a production project.
application = get_asgi_application()
