"""Numeric backends of the recogniser: the model's pieces behind one small protocol (`base.AcousticBackend`).

`torch_backend.TorchBackend` runs the PyTorch modules; `onnx_backend.OnnxBackend` runs graphs exported by
`uniasr export` with onnxruntime and never imports torch (`export_dir`: what such a directory holds).
Everything around them (chunk layout, CIF, SCAMA row selection, search, streaming, results) is shared numpy
code.
"""
