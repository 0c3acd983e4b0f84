"""Serving: the exported SavedModel (paper Figure 2's selector) and tools around it.

* `module`: the `tf.Module` whose signatures TF Serving runs (`serving_default`,
  `predict_all`, `serve_examples`, `regress`), each with a per-row `valid` output;
* `exporter`: strict restore of a model directory and atomic, versioned export to any
  `tf.io.gfile` filesystem;
* `client`: loads an export and scores records through its signatures;
* `rest_server`: a local stand-in for TF Serving's REST API (development tool only);
  its parts: `rest_json` (request and response formats), `versions` (which version is
  served), `http_server` (HTTP/1.1 with bounded threads and body bytes);
* `latency`: per-batch latency of the exported signatures.
"""
