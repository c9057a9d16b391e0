"""WebSocket routes of the live rooms (mounted by deliberate/asgi.py)."""

from django.urls import path

from surveys.live.consumers import RoomConsumer

websocket_urlpatterns = [
    path("ws/live/<int:room_id>/", RoomConsumer.as_asgi(), name="live-room-socket"),
]
