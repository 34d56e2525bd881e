"""The `neo` connection: its fields, declared once (`fields`), and the checked settings a
Connection is read into (`settings`)."""

from airflow_provider_neo.connection.fields import (
    AUTH_TYPES,
    CONN_TYPE,
    CONNECTION_FIELDS,
    DEFAULT_CONN_ID,
    FIELDS_BY_NAME,
    FORM_FIELDS,
    HOOK_NAME,
    RATE_LIMIT_STORAGE_SCHEMES,
    SCOPES,
    UI_FIELD_BEHAVIOUR,
    ConnField,
    conn_fields,
    redact_url,
    ui_field_behaviour_kebab,
)
from airflow_provider_neo.connection.settings import (
    RENAMED_KEYS,
    ConnectionLike,
    NeoConnectionSettings,
    connection_extra,
    unknown_key_warnings,
)

__all__ = [
    "AUTH_TYPES",
    "CONNECTION_FIELDS",
    "CONN_TYPE",
    "DEFAULT_CONN_ID",
    "FIELDS_BY_NAME",
    "FORM_FIELDS",
    "HOOK_NAME",
    "RATE_LIMIT_STORAGE_SCHEMES",
    "RENAMED_KEYS",
    "SCOPES",
    "UI_FIELD_BEHAVIOUR",
    "ConnField",
    "ConnectionLike",
    "NeoConnectionSettings",
    "conn_fields",
    "connection_extra",
    "redact_url",
    "ui_field_behaviour_kebab",
    "unknown_key_warnings",
]
