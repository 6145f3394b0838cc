"""Where versions live: the version list, manifests, the sources a catalog is read from, downloads from any URL or
bucket, and the stores `publish` writes to (requests, boto3, google-cloud-storage)."""
