"""The averaged generator (`train.generator_ema`; later work, not the paper).

A GAN's generator weights oscillate around what the discriminator currently rewards, and more so
in short, small-batch runs like the demo's: the last step's weights are one point of that
orbit. An exponential moving average of the weights over the run (Karras et al. 2018, Yazici et
al. 2019) sits nearer its centre and draws cleaner, steadier images at no training cost. The
generator's Keras Adam keeps the average (`use_ema`, so it is checkpointed with the optimizer
and a resumed run averages on); training itself never sees it. Sample sheets swap it in
(`averaged_weights`), with BatchNorm statistics re-estimated under it by the caller, and the
end of training keeps it (`keep=True`), so the exported generator is the averaged one.
"""

from __future__ import annotations

import contextlib

import keras


@contextlib.contextmanager
def averaged_weights(gan, keep: bool = False):
    """Inside the block `gan.generator` holds the averaged weights (when its optimizer keeps
    them); afterwards its trained weights again, unless `keep`."""
    # a LossScaleOptimizer (float16) keeps the average in the optimizer it wraps
    optimizer = getattr(gan.g_optimizer, "inner_optimizer", gan.g_optimizer)
    if not optimizer.use_ema:
        yield gan.generator
        return
    variables = gan.generator.trainable_variables
    trained = [keras.ops.convert_to_numpy(v) for v in variables]
    optimizer.finalize_variable_values(variables)
    try:
        yield gan.generator
    finally:
        if not keep:
            for variable, value in zip(variables, trained):
                variable.assign(value)
