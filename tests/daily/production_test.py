from kaml_tf.daily import production


def test_round_trip_and_none_before_any_promotion(tmp_path):
  path = str(tmp_path / "production.json")
  assert production.read(path) is None
  p = production.Production(model_dir="/m/3", day=3, version=3, export="/e/3")
  production.write(path, p)
  assert production.read(path) == p
  assert [f.name for f in tmp_path.iterdir()] == ["production.json"]  # No temporary left.
