"""Whole workflows as one task group a DAG adds in one call."""
