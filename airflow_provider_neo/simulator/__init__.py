"""A Capillary Neo points API simulator: a real HTTP server over SQLite data, with seeded faults.

Run it with ``python -m airflow_provider_neo.simulator --help``.
"""
