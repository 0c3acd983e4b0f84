"""Offline evaluation of CVR predictions: the paper's metrics (AUC, logloss, the per-target
protocol, RelaImpr) and the evaluator that turns a trained model's predictions into them."""
