"""What apache-airflow-providers-common-compat does not bridge across Airflow 2.11 and 3.x.

Everything else (hooks, operators, sensors, conf, exceptions, ObjectStoragePath) comes from
``airflow.providers.common.compat.sdk``, as in the official providers.
"""

from __future__ import annotations

try:  # Airflow 3: the task SDK's masker, which the task's log and XComs go through
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 2.11
    from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]

__all__ = ["mask_secret"]
