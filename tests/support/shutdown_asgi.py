"""The ASGI application gunicorn imports in tests/e2e/test_shutdown.py."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.shutdown_settings")
application = get_asgi_application()
