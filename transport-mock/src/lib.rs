#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod faults;
pub mod memory;
pub mod model;
#[cfg(feature = "http")]
pub mod serve;
pub mod sim;
