"""The ASGI application every server of tests/e2e/test_servers.py and test_shutdown.py serves: dualstream's, as
docs/deployment.md has a project's ``asgi.py`` (test_shutdown.py's ``start_uvicorn()`` serves Django's own)."""

import os

from dualstream.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.shutdown_settings")
application = get_asgi_application()
