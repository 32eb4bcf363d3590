//! Pixel codecs for DICOM transfer syntaxes. No pyo3.
//!
//! `rle` is pure Rust (no `unsafe`); `j2k` wraps OpenJPEG, compiled from the
//! sources `openjpeg-sys` bundles, behind a safe interface.

#[allow(unsafe_code)]
pub mod j2k;
pub mod rle;
