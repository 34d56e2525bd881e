"""Pieces the operators and sensors share: customer sources, date windows, output, progress.

The names the documentation gives are importable from here; each lives in its own module.
"""

from airflow_provider_neo.utils.customers import CustomerSource
from airflow_provider_neo.utils.files import byte_lines, read_text, text_lines
from airflow_provider_neo.utils.output import (
    OutputPathError,
    RecordSink,
    atomic_csv,
    atomic_open,
    task_writer,
)
from airflow_provider_neo.utils.progress import Progress
from airflow_provider_neo.utils.windows import ExpiryWindow

__all__ = [
    "CustomerSource",
    "ExpiryWindow",
    "OutputPathError",
    "Progress",
    "RecordSink",
    "atomic_csv",
    "atomic_open",
    "byte_lines",
    "read_text",
    "task_writer",
    "text_lines",
]
