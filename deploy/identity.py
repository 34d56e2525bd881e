"""Names the Celery workers of the local topology: Airflow records it as the task's hostname."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("NEO_WORKER_NAME") or socket.getfqdn()
