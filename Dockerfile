# Airflow 3.3.2 with this provider (and its Celery deployment extra) and the Neo simulator that
# docker-compose.yaml runs from this image, Airflow pinned in the same install so nothing moves it.
FROM apache/airflow:3.3.2
COPY --chown=airflow:root pyproject.toml README.md /opt/airflow-provider-neo/
COPY --chown=airflow:root airflow_provider_neo /opt/airflow-provider-neo/airflow_provider_neo
COPY --chown=airflow:root neo-simulator /opt/airflow-provider-neo/neo-simulator
RUN pip install --no-cache-dir "apache-airflow==3.3.2" "/opt/airflow-provider-neo[celery]" "/opt/airflow-provider-neo/neo-simulator"
