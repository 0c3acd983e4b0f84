"""Streaming (in-training) metrics; exact offline metrics live in kaml_tf.evaluation."""
