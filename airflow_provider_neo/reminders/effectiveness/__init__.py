"""Do reminders save points? Reminded customers against the holdout: what Neo says became of the
points at stake (`settlements`), the statistics (`statistics`, free of Airflow and of I/O) and
the report a brand reads, its CSV, page and chart (`report`). `ReminderEffectivenessOperator`
(`airflow_provider_neo.operators.effectiveness`) runs them."""
