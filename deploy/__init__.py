"""The docker-compose deployment, and the same topology run on this machine without Docker."""
