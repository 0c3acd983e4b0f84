"""The paper's public-data protocol for any multi-label table: incomplete logs with ground truth.

Each group (an ad task) draws a random target among the labels and K more reported labels;
`label_<a>` keeps a label only where its group reports it, `true_label_<a>` keeps them all.
Rows are split by time or at random (with pseudo-days), and written as this project's logs.
Modules, one concept each: `config`, `table` (reading and checks), `groups` (ad task ids and
stream keys), `draws`, `split`, `days`, `columns` (records under a schema), `report`, and
`conversion`, which composes them (`write_incomplete`; the KuaiRand conversion is one use).
"""
