"""Offline evaluation of CVR predictions: the paper's metrics (AUC, logloss, the per-target
protocol, RelaImpr), the evaluator that turns a trained model's predictions into them, and
the streaming AUC logged during training (`streaming_auc`)."""
