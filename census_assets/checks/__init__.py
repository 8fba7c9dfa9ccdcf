"""Asset checks, one module per asset group: training (the accuracy gate), lifecycle (champion and
drift) and batches (drift of each scored batch)."""
