"""Storage, without Dagster: where every artifact, model version and batch lives.

  objects.py   one ObjectStore interface (a local folder, gcp.py for gs://), atomic writes,
               compare-and-swap, the FAULTS seam for fault injection
  gcp.py       the one Google Cloud Storage client stack: credentials, retry policy
  errors.py    one error type per fault, shared by every module here
  manifests.py sha256, JSON, time stamps and manifest-checked reads
  codecs.py    Python objects <-> files in open formats (Parquet, JSON, LightGBM text, PNG)
  leases.py    run leases: what a running run holds and what it committed
  commits.py   run-scoped commits, pointers, published copies, retention (prune)
  registry.py  model versions, the production pointer, promotions and rollbacks
"""
