//! Pixel codecs for DICOM transfer syntaxes. Pure Rust, no pyo3.
#![forbid(unsafe_code)]

pub mod rle;
