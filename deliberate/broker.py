"""kombu's Redis transport, with the one fix that keeps a worker alive when Redis dies mid-task.

With kombu 5.7.0 and Celery 5.7.0, a consumer that loses its broker connection while it waits
in a BRPOP for more work first calls ``Connection.collect()``: closing the default channel
drains that BRPOP on the dead socket, the error is swallowed, and the transport's ``client`` is
set to None while the connection still holds the channel. Celery then calls
``Connection.close()`` (new in 5.7: 5.6.3 only collected), which closes the same channel again.
If a task is in flight (late acknowledgement: its message is still unacknowledged), closing
restores it through a new Redis pool, whose parameters are read from ``transport.client``: the
``AttributeError`` that follows is not a connection error, so neither ``maybe_close_channel``
nor ``ignore_errors`` catches it and the worker stops ("Unrecoverable error: AttributeError
'NoneType' object has no attribute 'hostname'"). An idle worker has nothing to restore and
survives, and so does a worker whose every pool process is busy (no BRPOP pending), which is
why only a fault under a running task with a pool process to spare shows it.

Here that case raises the transport's own connection error instead, which the close path
expects and ignores; the consumer then reconnects as it does for any lost connection. The
unacknowledged message stays in Redis's unacked set (or is gone with a wiped Redis): the task is
still running and acknowledges it when it ends, Redis's visibility timeout redelivers it if it
never does, and the results reconciler recomputes whatever is stale either way.

Selected by ``CELERY_BROKER_TRANSPORT`` in settings when ``REDIS_URL`` is set. Pinning Celery
below 5.7 would avoid it too, at the cost of that release's other reconnection fixes. Drop this
module once kombu or Celery handle it: tests/integration/test_broker_faults.py tells.
"""

from typing import Any

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was closed; reconnecting")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel
