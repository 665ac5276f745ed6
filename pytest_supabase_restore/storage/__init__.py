"""Storage objects over the S3 protocol, and the local S3 server.

``endpoint`` (where an endpoint is; no S3 library), ``client`` (the isolated boto3 client,
listing), ``faults`` (retry or stop, and what to check), ``records`` (what the backup set
records per object), ``stream`` (one object, hashed and resumable), ``download``,
``upload``, ``verify``, and ``server`` (moto in its own process, for the demo and the
throwaway staging targets). Import from the submodules: this package imports none of them.
"""
