"""Export to ONNX / TorchScript (`uniasr export`): wrappers (`wrappers`), exporters (`exporter`,
`onnx_export`, `torchscript_export`). The export-dir format, which the runtime reads too, is
`uniasr.backends.export_dir`; the onnxruntime runtime that loads an export is
`uniasr.backends.onnx_backend`."""
