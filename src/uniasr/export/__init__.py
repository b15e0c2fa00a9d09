"""Export to ONNX / TorchScript (`uniasr export`): wrappers (`wrappers`), exporters (`exporter`,
`onnx_export`, `torchscript_export`) and the export-dir format (`metadata`, torch-free). The onnxruntime
runtime that loads an export is `uniasr.backends.onnx_backend`."""
