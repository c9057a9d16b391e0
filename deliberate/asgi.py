"""The ASGI application: HTTP through Django, the live rooms' WebSockets through Channels.

``manage.py runserver`` serves it (daphne is the first installed app), and so does
``daphne deliberate.asgi:application`` in production. WebSockets are accepted only from the
site's own origins (ALLOWED_HOSTS), so another site cannot open a room with a member's cookie.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberate.settings")
# Django first: the routes import models, which need the app registry.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import CookieMiddleware  # noqa: E402

from surveys.live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(
            CookieMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
