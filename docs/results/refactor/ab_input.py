import os, sys, time
import kaml_tf
import tensorflow as tf
from kaml_tf import schema as schema_lib
from kaml_tf.data import dataset, stats as stats_lib
schema = schema_lib.Schema.load("/tmp/bench500k/schema.json")
stats = stats_lib.load_stats("/tmp/bench500k/stats.parquet", schema)
files = sys.argv[1]
ds = dataset.make_dataset(files, schema, stats, "adm", 5000, shuffle_buffer=100000, seed=0)
for _ in ds.take(3): pass
t0=time.process_time(); w0=time.time(); n=0
for f, t in ds:
  n += 1
print(f"{os.getcwd().split('/')[-1]:6s} {'parquet' if 'pq' in files else 'tfrec '} batches={n} cpu={time.process_time()-t0:.2f}s wall={time.time()-w0:.2f}s", flush=True)
