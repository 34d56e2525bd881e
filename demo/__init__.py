"""The expiry-reminder demo (`make demo`) and the local services it and the tests run."""
