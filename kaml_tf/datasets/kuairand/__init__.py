"""KuaiRand, the public short-video data the paper adapts into incomplete multi-label logs.

`conversion` turns a KuaiRand interaction log and its user features into this project's schema
and TFRecord logs, following the paper's protocol (section 4.1.1): one random target feedback
per video, K other reported feedbacks, the rest unreported (`ConversionConfig`, `convert`,
`write_conversion`). It composes `config`, `reading`, `features` and `report` with
`kaml_tf.datasets.incomplete`, the protocol for any multi-label table.
"""
