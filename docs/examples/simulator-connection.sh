export AIRFLOW_CONN_NEO_DEFAULT='{"conn_type": "neo", "host": "http://127.0.0.1:8790",
  "login": "neo_user", "password": "neo_password", "extra": {"timezone": "Asia/Kolkata"}}'
export AIRFLOW__CORE__TEST_CONNECTION=Enabled  # airflow connections test needs it, as the UI's Test button does
airflow connections test neo_default
