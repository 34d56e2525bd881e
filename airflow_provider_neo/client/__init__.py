"""The Neo HTTP client's parts: errors, backoff, rate budget, batching, concurrency, and the
sans-I/O request exchange that the sync and async hooks both drive."""
