"""Everything uniasr writes: the Kaldi-style output dir (`kaldi_dir`: OUT/1best_recog/{text,token,...}, and
its merge from shards) and the per-input formats (`formats`: text, JSON, SRT, WebVTT, TSV)."""
