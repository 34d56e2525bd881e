# The `neo` connection to a local simulator, started with:
#   neo-simulator --customers 3000 --port 8790
# (its default credentials; the organisation's time zone is Asia/Kolkata)
export AIRFLOW_CONN_NEO_DEFAULT='{
  "conn_type": "neo",
  "host": "http://127.0.0.1:8790",
  "login": "neo_user",
  "password": "neo_password",
  "extra": {"timezone": "Asia/Kolkata"}
}'
# `airflow connections test` needs it, like the UI's Test button
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
airflow connections test neo_default
