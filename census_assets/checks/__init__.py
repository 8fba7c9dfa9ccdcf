"""Asset checks, one module per asset group: training (the accuracy gate) and lifecycle."""
