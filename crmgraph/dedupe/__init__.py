"""One record per real party: duplicate matching (``normalize``, ``matching``)
and merging (``merge``)."""
