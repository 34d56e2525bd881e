"""A Capillary Neo points API simulator: a real HTTP server over SQLite data, with seeded faults.

Run it with ``neo-simulator --help`` (or ``python -m neo_simulator --help``); from Python, in a
child process, with ``neo_simulator.process.SimulatorProcess``.
"""
