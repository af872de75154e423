//! Recorder engine.
