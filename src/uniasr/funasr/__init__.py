"""Every FunASR / ModelScope name and file format, translated to and from uniasr's own types.

    files.py         the YAML reader, the torch-file reader (plain tensors only), ModelDirError
    model_config.py  config.yaml (FunASR 1.x and ModelScope 0.x keys) <-> UniASRConfig
    frontend_conf.py the frontend_conf keys, shared by the UniASR and FSMN-VAD config.yaml
    state_dict.py    FunASR parameter names <-> ours; loading and writing `model.pt`
    model_dir.py     a model dir: config.yaml, model.pt/model.pb, tokens.json/token_list, am.mvn,
                     decoding.yaml, configuration.json; writing FunASR 1.x dirs
    train_yaml.py    the training sections of config.yaml (optim_conf, train_conf, specaug_conf ...)
    fsmn_vad.py      a FunASR fsmn-vad dir and FunASR's streaming VAD output format

These modules read and write files; they import uniasr's config types (audio, model, the FSMN-VAD pieces
of vad) and the token conventions (decode.tokens), never the recogniser. The FunASR / ModelScope *APIs*
(`AutoModel`, `pipeline`) are shims over the recogniser in `uniasr.compat`.
"""
