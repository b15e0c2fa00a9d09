"""The UniASR model: frozen configs, the torch modules, chunk geometry (`layout`), CIF and decoding modes."""
