"""Training and fine-tuning of UniASR (`uniasr train`) and test-set scoring (`uniasr eval`).

Library entry points (imported lazily so `import uniasr.train` stays light):

>>> from uniasr.train.config import TrainConfig      # doctest: +SKIP
>>> from uniasr.train.trainer import train           # doctest: +SKIP
>>> cfg = TrainConfig(exp_dir="exp", train="data/train", config="conf.yaml")  # doctest: +SKIP
>>> result = train(cfg)  # doctest: +SKIP
"""
