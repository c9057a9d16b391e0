"""WSGI entry point (gunicorn deliberate.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberate.settings")

application = get_wsgi_application()
