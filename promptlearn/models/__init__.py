"""Language models: loading by name, folder or GGUF file, their kind, dtype, devices and process groups."""
