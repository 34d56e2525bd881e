"""Do reminders save points? Reminded customers against the holdout: the statistics
(`statistics`) apart from the report page and its chart (`report`)."""
