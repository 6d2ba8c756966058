//! Configuration: the LiveKit config.yaml model, loading, validation and core affinity.
