//! Pixel codecs for DICOM transfer syntaxes. No pyo3.
//!
//! `rle` and `markers` (where a codestream ends) are pure Rust (no
//! `unsafe`); `j2k` wraps OpenJPEG, `jls` CharLS and `jpeg` libjpeg-turbo
//! (through a small C layer), all compiled from the sources their -sys
//! crates bundle, behind safe interfaces.

#[allow(unsafe_code)]
pub mod j2k;
#[allow(unsafe_code)]
pub mod jls;
#[allow(unsafe_code)]
pub mod jpeg;
pub mod markers;
pub mod rle;
