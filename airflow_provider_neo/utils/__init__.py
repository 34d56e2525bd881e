"""Pieces the operators and sensors share: customer sources, date windows, output, progress."""
