# Airflow 3.3.2 with this provider (and its Celery deployment extra) installed, Airflow pinned in
# the same install so nothing upgrades or downgrades it.
FROM apache/airflow:3.3.2
COPY --chown=airflow:root pyproject.toml README.md /opt/airflow-provider-neo/
COPY --chown=airflow:root airflow_provider_neo /opt/airflow-provider-neo/airflow_provider_neo
RUN pip install --no-cache-dir "apache-airflow==3.3.2" "/opt/airflow-provider-neo[celery]"
