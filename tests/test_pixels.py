"""The pixel convention (stackgan/tfrecords/pixels.py) every reader, sheet and export uses."""

import numpy as np

from stackgan.tfrecords.pixels import to_uint8, to_unit_range


def test_every_uint8_value_survives_the_round_trip_and_spans_minus_one_to_one():
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    unit = to_unit_range(values).numpy()
    assert unit.dtype == np.float32
    assert unit.min() == -1.0 and unit.max() == 1.0
    np.testing.assert_array_equal(to_uint8(unit).numpy(), values)


def test_to_uint8_rounds_and_clips_generator_outputs():
    tanh = np.array([-1.5, -1.0, -0.999, 0.0, 0.998, 1.0, 2.0], np.float32)
    # (x + 1) * 127.5: -63.75 -> 0, 0 -> 0, 0.1275 -> 0, 127.5 -> 128 (half to even),
    # 254.745 -> 255, 255 -> 255, 382.5 -> 255
    np.testing.assert_array_equal(to_uint8(tanh).numpy(), [0, 0, 0, 128, 255, 255, 255])
