"""Live model performance: the prediction log, labels joined to it, and the statistics that judge it."""
