"""The Neo HTTP client's parts: the sans-I/O request exchange that the sync and async hooks both
drive (its actions, and the reading of answers), the transport that performs its requests within
their deadline, errors, backoff, rate budget, batching and concurrency."""
