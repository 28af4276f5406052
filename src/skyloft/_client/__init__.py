"""Client plumbing: configuration, the connection, code upload, the local daemon."""
